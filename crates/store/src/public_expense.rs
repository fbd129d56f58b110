//! 公費 and 医療扶助: payers' batches, the persons' public expenses and the assistance tickets.

use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use onshi_domain::{PartyId, PersonId};
use tokio_postgres::Transaction;

/// A public expense to grant (a `grant` line).
#[derive(Debug)]
pub struct Grant {
    pub line: i32,
    pub link: [u8; 32],
    pub payer_number: String,
    pub recipient_number: String,
    pub birth_date: NaiveDate,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub self_pay_cap: Option<i32>,
}

/// The end of a public expense (an `end` line): its last day.
#[derive(Debug)]
pub struct End {
    pub line: i32,
    pub payer_number: String,
    pub recipient_number: String,
    pub valid_to: NaiveDate,
}

/// A 医療券 or 調剤券 for a month and a facility (a `ticket` line).
#[derive(Debug)]
pub struct Ticket {
    pub line: i32,
    pub payer_number: String,
    pub recipient_number: String,
    /// The first day of the month.
    pub month: NaiveDate,
    pub facility_code: String,
    pub ticket: &'static str,
}

/// A line the stored data refuses: its line, column and code.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub line: i32,
    pub column: &'static str,
    pub code: &'static str,
}

/// What an applied batch changed.
#[derive(Debug, Default)]
pub struct Applied {
    pub granted: u64,
    pub ended: u64,
    pub tickets: u64,
}

/// The stored report of batch `id`, if any: its sender, status and report.
///
/// # Errors
/// Database failures.
pub async fn batch(
    client: &impl GenericClient,
    id: &str,
) -> anyhow::Result<Option<(PartyId, String, serde_json::Value)>> {
    let statement = client
        .prepare_cached("select party_id, status, report from public_expense_batches where id = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .map(|row| (row.get(0), row.get(1), row.get(2))))
}

/// Records a batch's report under its id; `false` when the id was taken meanwhile.
///
/// # Errors
/// Database failures.
pub async fn save_batch(
    client: &impl GenericClient,
    id: &str,
    party_id: PartyId,
    status: &str,
    report: &serde_json::Value,
) -> anyhow::Result<bool> {
    let statement = client
        .prepare_cached(
            "insert into public_expense_batches (id, party_id, status, report)
             values ($1, $2, $3, $4) on conflict (id) do nothing",
        )
        .await?;
    Ok(client
        .execute(&statement, &[&id, &party_id, &status, report])
        .await?
        == 1)
}

/// Applies a batch's lines inside `tx`: grants, then ends, then tickets, each kind in one
/// statement. Lines the stored data refuses are returned; the caller rolls back when there are
/// any.
///
/// # Errors
/// Database failures.
pub async fn apply(
    tx: &Transaction<'_>,
    batch_id: &str,
    grants: &[Grant],
    ends: &[End],
    tickets: &[Ticket],
) -> anyhow::Result<(Applied, Vec<Refused>)> {
    let mut refused = Vec::new();
    let mut applied = Applied::default();
    if !grants.is_empty() {
        let links: Vec<&[u8]> = grants.iter().map(|g| g.link.as_slice()).collect();
        tx.execute(
            "insert into persons (link) select distinct unnest($1::bytea[])
             on conflict (link) do nothing",
            &[&links],
        )
        .await?;
        let lines: Vec<i32> = grants.iter().map(|g| g.line).collect();
        let payers: Vec<&str> = grants.iter().map(|g| g.payer_number.as_str()).collect();
        let recipients: Vec<&str> = grants.iter().map(|g| g.recipient_number.as_str()).collect();
        let births: Vec<NaiveDate> = grants.iter().map(|g| g.birth_date).collect();
        let froms: Vec<NaiveDate> = grants.iter().map(|g| g.valid_from).collect();
        let tos: Vec<Option<NaiveDate>> = grants.iter().map(|g| g.valid_to).collect();
        let caps: Vec<Option<i32>> = grants.iter().map(|g| g.self_pay_cap).collect();
        let rows = tx
            .query(
                "with g as (
                     select * from unnest($1::int[], $2::bytea[], $3::text[], $4::text[],
                                          $5::date[], $6::date[], $7::date[], $8::int[])
                         as g (line, link, payer, recipient, birth, valid_from, valid_to, cap)),
                 inserted as (
                     insert into public_expenses (person_id, payer_number, recipient_number,
                                                  birth_date, valid_from, valid_to, self_pay_cap,
                                                  batch_id, line)
                     select p.id, g.payer, g.recipient, g.birth, g.valid_from, g.valid_to, g.cap,
                            $9, g.line
                     from g join persons p on p.link = g.link
                     on conflict (payer_number, recipient_number, valid_from) do nothing
                     returning line)
                 select g.line from g where g.line not in (select line from inserted)",
                &[
                    &lines,
                    &links,
                    &payers,
                    &recipients,
                    &births,
                    &froms,
                    &tos,
                    &caps,
                    &batch_id,
                ],
            )
            .await?;
        refused.extend(rows.iter().map(|row| Refused {
            line: row.get(0),
            column: "valid_from",
            code: "public_expense.already_granted",
        }));
        applied.granted = (grants.len() - rows.len()) as u64;
    }
    if !ends.is_empty() {
        let lines: Vec<i32> = ends.iter().map(|e| e.line).collect();
        let payers: Vec<&str> = ends.iter().map(|e| e.payer_number.as_str()).collect();
        let recipients: Vec<&str> = ends.iter().map(|e| e.recipient_number.as_str()).collect();
        let tos: Vec<NaiveDate> = ends.iter().map(|e| e.valid_to).collect();
        let rows = tx
            .query(
                "with e as (
                     select * from unnest($1::int[], $2::text[], $3::text[], $4::date[])
                         as e (line, payer, recipient, valid_to)),
                 ended as (
                     update public_expenses x set valid_to = e.valid_to
                     from e
                     where x.payer_number = e.payer and x.recipient_number = e.recipient
                       and x.valid_to is null and x.valid_from <= e.valid_to
                     returning e.line)
                 select e.line from e where e.line not in (select line from ended)",
                &[&lines, &payers, &recipients, &tos],
            )
            .await?;
        refused.extend(rows.iter().map(|row| Refused {
            line: row.get(0),
            column: "recipient_number",
            code: "public_expense.not_open",
        }));
        applied.ended = (ends.len() - rows.len()) as u64;
    }
    if !tickets.is_empty() {
        let lines: Vec<i32> = tickets.iter().map(|t| t.line).collect();
        let payers: Vec<&str> = tickets.iter().map(|t| t.payer_number.as_str()).collect();
        let recipients: Vec<&str> = tickets
            .iter()
            .map(|t| t.recipient_number.as_str())
            .collect();
        let months: Vec<NaiveDate> = tickets.iter().map(|t| t.month).collect();
        let facilities: Vec<&str> = tickets.iter().map(|t| t.facility_code.as_str()).collect();
        let kinds: Vec<&str> = tickets.iter().map(|t| t.ticket).collect();
        let rows = tx
            .query(
                "with t as (
                     select * from unnest($1::int[], $2::text[], $3::text[], $4::date[],
                                          $5::text[], $6::text[])
                         as t (line, payer, recipient, month, facility, ticket)),
                 inserted as (
                     insert into assistance_tickets (public_expense_id, month, facility_code,
                                                     ticket, batch_id, line)
                     select x.id, t.month, t.facility, t.ticket, $7, t.line
                     from t join lateral (
                         select x.id from public_expenses x
                         where x.payer_number = t.payer and x.recipient_number = t.recipient
                           and x.valid_from < t.month + interval '1 month'
                           and (x.valid_to is null or x.valid_to >= t.month)
                         order by x.valid_from desc limit 1) x on true
                     on conflict do nothing
                     returning line)
                 select t.line from t where t.line not in (select line from inserted)",
                &[
                    &lines,
                    &payers,
                    &recipients,
                    &months,
                    &facilities,
                    &kinds,
                    &batch_id,
                ],
            )
            .await?;
        refused.extend(rows.iter().map(|row| Refused {
            line: row.get(0),
            column: "month",
            code: "ticket.no_public_expense",
        }));
        applied.tickets = (tickets.len() - rows.len()) as u64;
    }
    refused.sort_by_key(|r| r.line);
    Ok((applied, refused))
}

/// A public expense as stored.
#[derive(Clone, Debug)]
pub struct PublicExpenseRow {
    pub id: i64,
    pub person_id: PersonId,
    pub payer_number: String,
    pub recipient_number: String,
    pub birth_date: NaiveDate,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub self_pay_cap: Option<i32>,
}

const COLUMNS: &str = "x.id, x.person_id, x.payer_number, x.recipient_number, x.birth_date,
    x.valid_from, x.valid_to, x.self_pay_cap";

fn read(row: &tokio_postgres::Row) -> PublicExpenseRow {
    PublicExpenseRow {
        id: row.get("id"),
        person_id: row.get("person_id"),
        payer_number: row.get("payer_number"),
        recipient_number: row.get("recipient_number"),
        birth_date: row.get("birth_date"),
        valid_from: row.get("valid_from"),
        valid_to: row.get("valid_to"),
        self_pay_cap: row.get("self_pay_cap"),
    }
}

/// The public expenses in force on each `(person, date)`, one list per pair, in order.
///
/// # Errors
/// Database failures.
pub async fn in_force(
    client: &impl GenericClient,
    persons: &[(PersonId, NaiveDate)],
) -> anyhow::Result<Vec<Vec<PublicExpenseRow>>> {
    if persons.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<PersonId> = persons.iter().map(|p| p.0).collect();
    let dates: Vec<NaiveDate> = persons.iter().map(|p| p.1).collect();
    let statement = client
        .prepare_cached(&format!(
            "select q.i, {COLUMNS}
             from unnest($1::bigint[], $2::date[]) with ordinality as q (person_id, care, i)
             join public_expenses x on x.person_id = q.person_id
              and x.valid_from <= q.care and (x.valid_to is null or x.valid_to >= q.care)
             order by q.i, x.payer_number, x.valid_from"
        ))
        .await?;
    let rows = client.query(&statement, &[&ids, &dates]).await?;
    let mut out = vec![Vec::new(); persons.len()];
    for row in &rows {
        let i: i64 = row.get(0);
        if let Some(list) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
            list.push(read(row));
        }
    }
    Ok(out)
}

/// Every public expense under a payer and recipient number, oldest first.
///
/// # Errors
/// Database failures.
pub async fn by_numbers(
    client: &impl GenericClient,
    payer_number: &str,
    recipient_number: &str,
) -> anyhow::Result<Vec<PublicExpenseRow>> {
    let statement = client
        .prepare_cached(&format!(
            "select {COLUMNS} from public_expenses x
             where x.payer_number = $1 and x.recipient_number = $2
             order by x.valid_from, x.id"
        ))
        .await?;
    let rows = client
        .query(&statement, &[&payer_number, &recipient_number])
        .await?;
    Ok(rows.iter().map(read).collect())
}

/// Whether `person_id` holds a public expense of the same 法別 as `payer_number` (another
/// payer's or recipient number) granted after `after` and in force on `date`.
///
/// # Errors
/// Database failures.
pub async fn newer_exists(
    client: &impl GenericClient,
    person_id: PersonId,
    houbetsu: &str,
    after: NaiveDate,
    date: NaiveDate,
) -> anyhow::Result<bool> {
    let statement = client
        .prepare_cached(
            "select exists (select 1 from public_expenses x
                            where x.person_id = $1 and left(x.payer_number, 2) = $2
                              and x.valid_from > $3 and x.valid_from <= $4
                              and (x.valid_to is null or x.valid_to >= $4))",
        )
        .await?;
    Ok(client
        .query_one(&statement, &[&person_id, &houbetsu, &after, &date])
        .await?
        .get(0))
}

/// The tickets of a public expense for `month` (its first day): `(facility code, ticket)`.
///
/// # Errors
/// Database failures.
pub async fn tickets(
    client: &impl GenericClient,
    public_expense_id: i64,
    month: NaiveDate,
) -> anyhow::Result<Vec<(String, String)>> {
    let statement = client
        .prepare_cached(
            "select facility_code, ticket from assistance_tickets
             where public_expense_id = $1 and month = $2 order by facility_code, ticket",
        )
        .await?;
    Ok(client
        .query(&statement, &[&public_expense_id, &month])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}
