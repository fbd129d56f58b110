//! The fixed lists the generator draws from: prefectures, insurers and names.
//!
//! Every place, insurer and person here is invented. Insurer numbers are built from their parts
//! with a valid check digit; they are not the numbers of real insurers.

use onshi_domain::check_digit;

/// A prefecture households can live in: code, name, short name used in card symbols, and the
/// range of the first three postcode digits there.
pub(super) struct Prefecture {
    pub code: u8,
    pub name: &'static str,
    pub short: &'static str,
    pub postcode_lo: u16,
    pub postcode_hi: u16,
}

pub(super) const PREFECTURES: &[Prefecture] = &[
    Prefecture {
        code: 1,
        name: "北海道",
        short: "北海道",
        postcode_lo: 40,
        postcode_hi: 99,
    },
    Prefecture {
        code: 4,
        name: "宮城県",
        short: "宮城",
        postcode_lo: 980,
        postcode_hi: 989,
    },
    Prefecture {
        code: 11,
        name: "埼玉県",
        short: "埼玉",
        postcode_lo: 330,
        postcode_hi: 369,
    },
    Prefecture {
        code: 12,
        name: "千葉県",
        short: "千葉",
        postcode_lo: 260,
        postcode_hi: 299,
    },
    Prefecture {
        code: 13,
        name: "東京都",
        short: "東京",
        postcode_lo: 100,
        postcode_hi: 208,
    },
    Prefecture {
        code: 14,
        name: "神奈川県",
        short: "神奈川",
        postcode_lo: 210,
        postcode_hi: 259,
    },
    Prefecture {
        code: 23,
        name: "愛知県",
        short: "愛知",
        postcode_lo: 440,
        postcode_hi: 498,
    },
    Prefecture {
        code: 26,
        name: "京都府",
        short: "京都",
        postcode_lo: 600,
        postcode_hi: 629,
    },
    Prefecture {
        code: 27,
        name: "大阪府",
        short: "大阪",
        postcode_lo: 530,
        postcode_hi: 599,
    },
    Prefecture {
        code: 28,
        name: "兵庫県",
        short: "兵庫",
        postcode_lo: 650,
        postcode_hi: 679,
    },
    Prefecture {
        code: 34,
        name: "広島県",
        short: "広島",
        postcode_lo: 720,
        postcode_hi: 739,
    },
    Prefecture {
        code: 40,
        name: "福岡県",
        short: "福岡",
        postcode_lo: 800,
        postcode_hi: 839,
    },
];

/// Invented municipalities; every prefecture is given all of them.
pub(super) const CITIES: &[&str] = &[
    "架空市",
    "緑ヶ丘市",
    "桜台市",
    "朝霧市",
    "星見市",
    "若杉町",
    "青葉原市",
    "鳴沢町",
];

/// Town names within a municipality.
pub(super) const TOWNS: &[&str] = &[
    "緑町",
    "本町",
    "栄町",
    "旭町",
    "若葉",
    "東町",
    "中央",
    "幸町",
    "桜木町",
    "南台",
];

/// The scheme an insurer belongs to, which decides who it covers and how its cards look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    /// 協会けんぽ, 法別 01.
    Kyokai,
    /// 組合健保, 法別 06.
    Kumiai,
    /// 共済組合, 法別 31-34.
    Kyosai,
    /// 国民健康保険, 6-digit numbers.
    Kokuho,
    /// 後期高齢者医療, 法別 39: persons 75 and over, no branch numbers.
    Kouki,
}

pub(super) struct Insurer {
    /// The number as written in the file: 6 digits for 国保, otherwise 8.
    pub number: String,
    pub name: String,
    pub prefecture: usize,
    pub scheme: Scheme,
    /// The municipality of a 国保 insurer, where its members live.
    pub city: Option<&'static str>,
}

/// Appends the Luhn check digit to `body`.
fn with_check(body: String) -> String {
    let check = check_digit::luhn(&body);
    format!("{body}{check}")
}

fn pref_index(code: u8) -> usize {
    PREFECTURES
        .iter()
        .position(|p| p.code == code)
        .expect("the insurer list only names prefectures in PREFECTURES")
}

const KUMIAI: &[(&str, u8)] = &[
    ("架空電機健康保険組合", 13),
    ("東都運輸健康保険組合", 13),
    ("みらい商事健康保険組合", 13),
    ("さくら製薬健康保険組合", 27),
    ("浪速精機健康保険組合", 27),
    ("日之出食品健康保険組合", 23),
    ("青空情報システム健康保険組合", 14),
    ("光陽建設健康保険組合", 40),
    ("北斗物産健康保険組合", 1),
    ("若葉百貨店健康保険組合", 26),
];

const KYOSAI: &[(&str, u8, u8)] = &[
    ("架空省共済組合", 31, 13),
    ("架空県市町村職員共済組合", 32, 11),
    ("架空県警察職員共済組合", 33, 34),
    ("架空県公立学校共済組合", 34, 28),
];

const KOUKI: &[u8] = &[1, 13, 14, 23, 27, 40];

const KOKUHO: &[(u8, usize)] = &[
    (13, 0),
    (13, 1),
    (11, 2),
    (12, 3),
    (27, 4),
    (28, 5),
    (4, 6),
    (34, 7),
];

/// The fixed list of about 40 synthetic insurers, in a stable order.
pub(super) fn insurers() -> Vec<Insurer> {
    let mut out = Vec::new();
    for (i, p) in PREFECTURES.iter().enumerate() {
        let short = if p.code == 1 { p.name } else { p.short };
        out.push(Insurer {
            number: with_check(format!("01{:02}016", p.code)),
            name: format!("全国健康保険協会 {short}支部"),
            prefecture: i,
            scheme: Scheme::Kyokai,
            city: None,
        });
    }
    for (i, (name, pref)) in KUMIAI.iter().enumerate() {
        out.push(Insurer {
            number: with_check(format!("06{pref:02}{:03}", 101 + i * 37)),
            name: (*name).to_owned(),
            prefecture: pref_index(*pref),
            scheme: Scheme::Kumiai,
            city: None,
        });
    }
    for (name, houbetsu, pref) in KYOSAI {
        out.push(Insurer {
            number: with_check(format!("{houbetsu}{pref:02}512")),
            name: (*name).to_owned(),
            prefecture: pref_index(*pref),
            scheme: Scheme::Kyosai,
            city: None,
        });
    }
    for pref in KOUKI {
        let p = &PREFECTURES[pref_index(*pref)];
        out.push(Insurer {
            number: with_check(format!("39{pref:02}001")),
            name: format!("{}後期高齢者医療広域連合", p.name),
            prefecture: pref_index(*pref),
            scheme: Scheme::Kouki,
            city: None,
        });
    }
    for (i, (pref, city)) in KOKUHO.iter().enumerate() {
        let city = CITIES[*city];
        out.push(Insurer {
            number: with_check(format!("{pref:02}{:03}", 103 + i * 61)),
            name: format!("{city}国民健康保険"),
            prefecture: pref_index(*pref),
            scheme: Scheme::Kokuho,
            city: Some(city),
        });
    }
    out
}

pub(super) const FAMILY_NAMES: &[(&str, &str)] = &[
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
    ("山崎", "ヤマザキ"),
    ("森", "モリ"),
    ("池田", "イケダ"),
    ("橋本", "ハシモト"),
    ("阿部", "アベ"),
    ("石川", "イシカワ"),
    ("前田", "マエダ"),
    ("藤田", "フジタ"),
    ("小川", "オガワ"),
    ("岡田", "オカダ"),
];

pub(super) const MALE_NAMES: &[(&str, &str)] = &[
    ("太郎", "タロウ"),
    ("健太", "ケンタ"),
    ("翔太", "ショウタ"),
    ("大輔", "ダイスケ"),
    ("拓也", "タクヤ"),
    ("誠", "マコト"),
    ("浩", "ヒロシ"),
    ("隆", "タカシ"),
    ("蓮", "レン"),
    ("悠真", "ユウマ"),
    ("陽翔", "ハルト"),
    ("大和", "ヤマト"),
    ("一郎", "イチロウ"),
    ("修", "オサム"),
    ("茂", "シゲル"),
    ("清", "キヨシ"),
];

pub(super) const FEMALE_NAMES: &[(&str, &str)] = &[
    ("花子", "ハナコ"),
    ("陽子", "ヨウコ"),
    ("恵子", "ケイコ"),
    ("美咲", "ミサキ"),
    ("由美", "ユミ"),
    ("裕子", "ユウコ"),
    ("愛", "アイ"),
    ("結衣", "ユイ"),
    ("陽菜", "ヒナ"),
    ("さくら", "サクラ"),
    ("葵", "アオイ"),
    ("凛", "リン"),
    ("幸子", "サチコ"),
    ("和子", "カズコ"),
    ("久美子", "クミコ"),
    ("真由美", "マユミ"),
];
