//! Reading coverages as they stood on a date of care.

use std::sync::{LazyLock, OnceLock};

use anyhow::Context;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use onshi_domain::{
    BranchNumber, CoverageId, InsuredNumber, InsuredSymbol, InsurerNumber, PersonId,
};

/// One look-up: the card key, the birth date (part of the match) and the date of care.
#[derive(Clone, Copy, Debug)]
pub struct Lookup<'a> {
    pub insurer_number: &'a InsurerNumber,
    pub symbol: Option<&'a InsuredSymbol>,
    pub number: &'a InsuredNumber,
    pub branch: Option<&'a BranchNumber>,
    pub birth_date: NaiveDate,
    pub date_of_care: NaiveDate,
}

/// A coverage with the version of its attributes in force on the date of care.
#[derive(Clone, Debug)]
pub struct CoverageRow {
    pub coverage_id: CoverageId,
    pub person_id: PersonId,
    pub insurer_number: String,
    pub insurer_name: Option<String>,
    pub symbol: String,
    pub number: String,
    pub branch: String,
    pub acquired_on: NaiveDate,
    pub lost_on: Option<NaiveDate>,
    pub loss_reason: Option<String>,
    pub card_classification: String,
    pub relationship: String,
    pub insured_name: String,
    pub name: String,
    pub name_kana: String,
    pub sex: String,
    pub birth_date: NaiveDate,
    pub postcode: Option<String>,
    pub address: Option<String>,
    pub copay_ratio: String,
    pub card_issued_on: Option<NaiveDate>,
    pub card_valid_from: Option<NaiveDate>,
    pub card_valid_to: Option<NaiveDate>,
    pub elderly_copay_ratio: Option<String>,
    pub elderly_valid_from: Option<NaiveDate>,
    pub elderly_valid_to: Option<NaiveDate>,
    pub limit_classification: Option<String>,
    pub limit_category: Option<String>,
    pub limit_valid_from: Option<NaiveDate>,
    pub limit_valid_to: Option<NaiveDate>,
    /// 特定疾病療養受療証: category, validity, self-pay cap in yen.
    pub specific_disease: Option<String>,
    pub specific_disease_valid_from: Option<NaiveDate>,
    pub specific_disease_valid_to: Option<NaiveDate>,
    pub specific_disease_self_pay: Option<String>,
    /// The same person holds another coverage, acquired later and still in force on the date of care.
    pub newer_coverage_exists: bool,
}

/// The coverages matching each query's card key and birth date, acquired on or before its date of
/// care, each with the version of its attributes in force on that date. One round trip for any
/// number of queries; the result has one (possibly empty) list per query, in query order.
///
/// An absent branch matches every branch (cards issued before branch numbers existed show none);
/// an absent symbol matches only coverages without one.
///
/// # Errors
/// Database failures.
pub async fn candidates(
    client: &impl GenericClient,
    queries: &[Lookup<'_>],
) -> anyhow::Result<Vec<Vec<CoverageRow>>> {
    let n = queries.len();
    let mut insurer = Vec::with_capacity(n);
    let mut symbol = Vec::with_capacity(n);
    let mut number = Vec::with_capacity(n);
    let mut branch = Vec::with_capacity(n);
    let mut birth = Vec::with_capacity(n);
    let mut care = Vec::with_capacity(n);
    for q in queries {
        insurer.push(q.insurer_number.as_str());
        symbol.push(q.symbol.map_or("", |s| s.as_str()));
        number.push(q.number.as_str());
        branch.push(q.branch.map_or("", |b| b.as_str()));
        birth.push(q.birth_date);
        care.push(q.date_of_care);
    }
    // Built once: `prepare_cached` finds its statement by this text, and every check asks.
    static BY_KEY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select q.ord, {CANDIDATE_COLUMNS}
                 from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::date[])
                      with ordinality as q(ins, sym, num, br, birth, care, ord)
                 join coverages c
                   on c.insurer_number = q.ins and c.number = q.num and c.symbol = q.sym
                  and (q.br = '' or c.branch = q.br) and c.acquired_on <= q.care
                 join lateral (
                     select * from coverage_versions v
                     where v.coverage_id = c.id and v.effective_on <= q.care
                     order by v.effective_on desc, v.id desc limit 1) v on true
                 left join insurers i on i.insurer_number = c.insurer_number
                 where v.birth_date = q.birth"
        )
    });
    let statement = client.prepare_cached(&BY_KEY).await?;
    static BY_KEY_COLUMNS: OnceLock<Columns> = OnceLock::new();
    let columns = Columns::once(&BY_KEY_COLUMNS, &statement)?;
    let rows = client
        .query(
            &statement,
            &[&insurer, &symbol, &number, &branch, &birth, &care],
        )
        .await?;
    let mut out: Vec<Vec<CoverageRow>> = (0..n).map(|_| Vec::new()).collect();
    for row in rows {
        let ord: i64 = row.get(0);
        let index = usize::try_from(ord - 1).expect("ordinality starts at 1");
        out[index].push(columns.read(&row));
    }
    // Sorted here rather than in SQL: a Sort node costs more to set up per execution than
    // sorting a handful of rows.
    for list in &mut out {
        list.sort_by(|a, b| (&a.branch, a.acquired_on).cmp(&(&b.branch, b.acquired_on)));
    }
    Ok(out)
}

/// Every coverage of one person acquired on or before the date of care, with the version of its
/// attributes in force on that date (the card path: the person is known, not the key).
///
/// # Errors
/// Database failures.
pub async fn candidates_of_person(
    client: &impl GenericClient,
    person_id: PersonId,
    date_of_care: NaiveDate,
) -> anyhow::Result<Vec<CoverageRow>> {
    static OF_PERSON: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select 1::int8 as ord, {CANDIDATE_COLUMNS}
                 from (select $2::date as care) q
                 join coverages c on c.person_id = $1 and c.acquired_on <= q.care
                 join lateral (
                     select * from coverage_versions v
                     where v.coverage_id = c.id and v.effective_on <= q.care
                     order by v.effective_on desc, v.id desc limit 1) v on true
                 left join insurers i on i.insurer_number = c.insurer_number
                 order by c.acquired_on, c.id"
        )
    });
    let statement = client.prepare_cached(&OF_PERSON).await?;
    static OF_PERSON_COLUMNS: OnceLock<Columns> = OnceLock::new();
    let columns = Columns::once(&OF_PERSON_COLUMNS, &statement)?;
    let rows = client
        .query(&statement, &[&person_id, &date_of_care])
        .await?;
    Ok(rows.iter().map(|row| columns.read(row)).collect())
}

/// The columns of a [`CoverageRow`], by the names of its fields, after a leading ordinal column;
/// `q.care` is the date of care.
const CANDIDATE_COLUMNS: &str = "c.id as coverage_id, c.person_id, c.insurer_number,
    i.name as insurer_name, c.symbol, c.number, c.branch, c.acquired_on, c.lost_on,
    c.loss_reason, v.card_classification, v.relationship, v.insured_name, v.name, v.name_kana,
    v.sex, v.birth_date, v.postcode, v.address, v.copay_ratio,
    v.card_issued_on, v.card_valid_from, v.card_valid_to,
    v.elderly_copay_ratio, v.elderly_valid_from, v.elderly_valid_to,
    v.limit_classification, v.limit_category, v.limit_valid_from, v.limit_valid_to,
    v.specific_disease, v.specific_disease_valid_from, v.specific_disease_valid_to,
    v.specific_disease_self_pay,
    (c.lost_on is not null and c.lost_on <= q.care and exists (
        select 1 from coverages n
        where n.person_id = c.person_id and n.id <> c.id
          and n.acquired_on >= c.acquired_on
          and (n.lost_on is null or n.lost_on > q.care))) as newer_coverage_exists";

/// Reads a [`CoverageRow`] by column name: each field is the result column of the same name in
/// [`CANDIDATE_COLUMNS`], its position found once per query text (the same on every session; a
/// name missing from the SQL is an error at the first query, never a shifted column).
macro_rules! coverage_columns {
    ($($field:ident),+ $(,)?) => {
        struct Columns {
            $($field: usize,)+
        }

        impl Columns {
            fn of(statement: &tokio_postgres::Statement) -> anyhow::Result<Columns> {
                let position = |name: &str| {
                    statement
                        .columns()
                        .iter()
                        .position(|column| column.name() == name)
                        .with_context(|| format!("the coverage query has no column {name}"))
                };
                Ok(Columns {
                    $($field: position(stringify!($field))?,)+
                })
            }

            /// The positions of one query text's columns, found on its first execution.
            fn once<'a>(
                cell: &'a OnceLock<Columns>,
                statement: &tokio_postgres::Statement,
            ) -> anyhow::Result<&'a Columns> {
                if let Some(columns) = cell.get() {
                    return Ok(columns);
                }
                let columns = Columns::of(statement)?;
                Ok(cell.get_or_init(|| columns))
            }

            fn read(&self, row: &Row) -> CoverageRow {
                CoverageRow {
                    $($field: row.get(self.$field),)+
                }
            }
        }
    };
}

coverage_columns!(
    coverage_id,
    person_id,
    insurer_number,
    insurer_name,
    symbol,
    number,
    branch,
    acquired_on,
    lost_on,
    loss_reason,
    card_classification,
    relationship,
    insured_name,
    name,
    name_kana,
    sex,
    birth_date,
    postcode,
    address,
    copay_ratio,
    card_issued_on,
    card_valid_from,
    card_valid_to,
    elderly_copay_ratio,
    elderly_valid_from,
    elderly_valid_to,
    limit_classification,
    limit_category,
    limit_valid_from,
    limit_valid_to,
    specific_disease,
    specific_disease_valid_from,
    specific_disease_valid_to,
    specific_disease_self_pay,
    newer_coverage_exists,
);
