//! Every error code onshi answers with, in one table: the code, its HTTP status, the field it
//! names (where fixed), and two remedies: a short Japanese one for the desk's staff (`remedy`)
//! and an English one for the software vendor (`vendor_remedy`). The router, the handlers, the
//! generated API description and `docs/error-codes.md` all read this table; a code that is not
//! here cannot be answered.
//!
//! A field that failed validation answers `<field>.<fault>` (e.g. `insurer_number.check_digit`):
//! the field comes from the request, the fault from [`Fault`], whose remedies are below too.

use actix_web::http::StatusCode;

use crate::domain::Fault;

/// One row of the table.
#[derive(Debug)]
pub struct Spec {
    pub code: &'static str,
    pub status: StatusCode,
    /// The request member or header the code always names, if any.
    pub field: Option<&'static str>,
    /// For desk staff, in Japanese: what to do now.
    pub remedy: &'static str,
    /// For the software vendor, in English: what the client must change.
    pub vendor_remedy: &'static str,
}

macro_rules! codes {
    ($($variant:ident $code:literal $status:ident $field:expr,
        $remedy:literal, $vendor:literal;)+) => {
        /// A stable error code (see the module's table).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code { $($variant),+ }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            pub fn spec(self) -> &'static Spec {
                match self {
                    $(Code::$variant => &Spec {
                        code: $code,
                        status: StatusCode::$status,
                        field: $field,
                        remedy: $remedy,
                        vendor_remedy: $vendor,
                    }),+
                }
            }
        }
    };
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.spec().code
    }

    pub fn status(self) -> StatusCode {
        self.spec().status
    }
}

const NONE: Option<&str> = None;
const CHALLENGE: Option<&str> = Some("challenge_id");
const CERTIFICATE: Option<&str> = Some("certificate");
const IDEMPOTENCY_KEY: Option<&str> = Some("Idempotency-Key");
const AUTHORIZATION: Option<&str> = Some("Authorization");

codes! {
    AuthMissing "auth.missing" UNAUTHORIZED AUTHORIZATION,
        "端末の接続設定（トークン）がありません。システム担当者に連絡してください。",
        "Send the party's token as `Authorization: Bearer <token>`.";
    AuthMalformed "auth.malformed" UNAUTHORIZED AUTHORIZATION,
        "端末の接続設定が正しくありません。システム担当者に連絡してください。",
        "Use the Bearer scheme with the token as issued: `Authorization: Bearer <token>`.";
    AuthInvalid "auth.invalid" UNAUTHORIZED AUTHORIZATION,
        "接続用の資格情報が無効か期限切れです。システム担当者に新しいものを依頼してください。",
        "The token is unknown, revoked or expired: ask the operator for a new one; do not retry with the same token.";
    AuthCertificateMismatch "auth.certificate_mismatch" UNAUTHORIZED AUTHORIZATION,
        "この端末の証明書では接続できません。システム担当者に連絡してください。",
        "This token is bound to a client certificate: connect over TLS presenting the registered certificate.";
    AuthForbidden "auth.forbidden" FORBIDDEN NONE,
        "この端末の権限ではこの操作はできません。",
        "The party's role may not use this endpoint (see `Roles:` in the API description); use the endpoint meant for it.";
    RouteNotFound "route.not_found" NOT_FOUND NONE,
        "システムの設定に誤りがあります。システム担当者に連絡してください。",
        "No such endpoint: check the path against the API description (`GET /openapi.json`).";
    RouteMethodNotAllowed "route.method_not_allowed" METHOD_NOT_ALLOWED NONE,
        "システムの設定に誤りがあります。システム担当者に連絡してください。",
        "Use one of the methods the `Allow` header lists.";
    BodyTimeout "body.timeout" REQUEST_TIMEOUT NONE,
        "通信が遅く、送信が間に合いませんでした。もう一度お試しください。",
        "Send the whole body within the time limit (30 s for JSON; the upload deadline for enrolment files).";
    BodyIncomplete "body.incomplete" BAD_REQUEST NONE,
        "通信が途中で切れました。もう一度お試しください。",
        "The body broke off before its end: send it again whole.";
    BodyTooLarge "body.too_large" PAYLOAD_TOO_LARGE NONE,
        "一度に送る件数が多すぎます。分けて送ってください。",
        "The body exceeds the operation's size limit: split it.";
    BodyNotObject "body.not_object" BAD_REQUEST NONE,
        "システムの送信内容に誤りがあります。システム担当者に連絡してください。",
        "The body must be one JSON object.";
    BodyInvalidJson "body.invalid_json" BAD_REQUEST NONE,
        "システムの送信内容に誤りがあります。システム担当者に連絡してください。",
        "The body is not valid UTF-8 JSON: fix the encoder.";
    BodyInvalid "body.invalid" BAD_REQUEST NONE,
        "システムの送信内容に誤りがあります。システム担当者に連絡してください。",
        "A member has the wrong type or a required one is missing (`field` names it): see the operation's schema.";
    BodyUnknownField "body.unknown_field" BAD_REQUEST NONE,
        "システムの送信内容に誤りがあります。システム担当者に連絡してください。",
        "The member named in `field` is not part of the request: check its spelling; unknown members are refused, never ignored.";
    ContentTypeUnsupported "content_type.unsupported" UNSUPPORTED_MEDIA_TYPE NONE,
        "ファイルの形式が違います。システム担当者に連絡してください。",
        "Send the Content-Type the operation lists.";
    QueryNotObject "query.not_object" BAD_REQUEST NONE,
        "照会内容に誤りがあります。システム担当者に連絡してください。",
        "Each query must be a JSON object.";
    QueryInvalid "query.invalid" BAD_REQUEST NONE,
        "照会内容に誤りがあります。システム担当者に連絡してください。",
        "The query string is not readable: percent-encode it as a URL query.";
    QueryUnknownParameter "query.unknown_parameter" BAD_REQUEST NONE,
        "照会内容に誤りがあります。システム担当者に連絡してください。",
        "The query parameter named in `field` is not taken by this operation.";
    QueriesRequired "queries.required" BAD_REQUEST Some("queries"),
        "照会する患者がありません。",
        "Send `{\"queries\": [ ... ]}` with 1 to 10,000 queries.";
    QueriesCount "queries.count" BAD_REQUEST Some("queries"),
        "一度に照会できるのは1件から10,000件までです。分けて照会してください。",
        "A batch holds 1 to 10,000 queries: split larger ones.";
    BulkCount "bulk.count" BAD_REQUEST Some("queries"),
        "一括照会できるのは1件から100,000件までです。分けて送ってください。",
        "A bulk inquiry holds 1 to 100,000 queries: split larger ones.";
    BulkNotFound "bulk.not_found" NOT_FOUND NONE,
        "該当する一括照会がありません。受付番号を確かめてください。保存期間を過ぎた結果は削除されています。",
        "No bulk inquiry of this party has this reception number: use the `reception_number` the upload answered; results are deleted after the retention period.";
    CsvHeader "csv.header" BAD_REQUEST NONE,
        "ファイルの見出し行に誤りがあります。システム担当者に連絡してください。",
        "The CSV header names an unknown or repeated column, or lacks insurer_number, number or birth_date: name the columns as the JSON query's members.";
    CsvMalformed "csv.malformed" BAD_REQUEST NONE,
        "ファイルを読み取れません。システム担当者に連絡してください。",
        "The file is not UTF-8 CSV with the same number of cells on every line (the message names the line): fix the export.";
    BirthDateAfterDateOfCare "birth_date.after_date_of_care" BAD_REQUEST Some("birth_date"),
        "生年月日が診療日より後になっています。入力を確かめてください。",
        "The birth date is after the date of care: check both.";
    RateLimited "rate.limited" TOO_MANY_REQUESTS NONE,
        "照会が集中しています。少し待ってからもう一度お試しください。",
        "Too many requests: wait the seconds in `Retry-After`, then retry; spread bulk work with POST /v1/eligibility/batch.";
    RateDailyQuota "rate.daily_quota" TOO_MANY_REQUESTS NONE,
        "本日の照会の上限に達しました。明日以降に照会するか、窓口の運用者に連絡してください。",
        "The party's daily quota is used up until midnight Japan time; ask the operator if the quota is too small.";
    RateEnumerationSuspected "rate.enumeration_suspected" TOO_MANY_REQUESTS NONE,
        "該当なしの照会が続いたため一時停止しています。運用者に連絡してください。",
        "Many distinct not-found keys were queried: the party is held until the operator clears it (`onshi party clear-flag`).";
    ServiceUnavailable "service.unavailable" SERVICE_UNAVAILABLE NONE,
        "システムが一時的に使えません。数秒後にもう一度お試しください。解消しない場合は保険証等で確認してください。",
        "The service cannot reach its database: retry after `Retry-After` seconds, with backoff.";
    Internal "internal" INTERNAL_SERVER_ERROR NONE,
        "システムで問題が起きました。もう一度お試しください。続く場合は運用者に連絡してください。",
        "An internal error, logged by the server: retry once, then report it to the operator with the time.";
    CoverageNotFound "coverage.not_found" NOT_FOUND NONE,
        "該当する保険の記録がありません。",
        "No coverage matches the key given.";
    PersonAmbiguous "person.ambiguous" CONFLICT NONE,
        "該当する人が複数います。運用者に連絡してください。",
        "The key matches more than one person: narrow it (add the birth date or branch).";
    BeforeUnknown "before.unknown" BAD_REQUEST Some("before"),
        "照会内容に誤りがあります。システム担当者に連絡してください。",
        "`before` must be a `next` value from an earlier page of this listing.";
    PurposeUnknown "purpose.unknown" NOT_FOUND Some("purpose"),
        "この用途は登録されていません。運用者に連絡してください。",
        "No purpose has this name: register it first (POST /v1/purposes, admin).";
    PurposeNotAuthorized "purpose.not_authorized" FORBIDDEN Some("purpose"),
        "この施設はこの用途のIDを扱えません。",
        "The party is not among the purpose's parties.";
    PurposeExists "purpose.exists" CONFLICT Some("name"),
        "この用途はすでに登録されています。",
        "A purpose with this name exists: choose another name.";
    PartiesUnknown "parties.unknown" BAD_REQUEST Some("parties"),
        "指定された施設等が登録されていません。",
        "Every party id listed must be a registered party.";
    HealthIdNotFound "health_id.not_found" NOT_FOUND Some("health_id"),
        "このIDは見つかりません。番号を確かめてください。",
        "No health ID of this purpose has this value.";
    HealthIdRevoked "health_id.revoked" CONFLICT Some("health_id"),
        "このIDは再発行により使えなくなっています。新しいIDを確認してください。",
        "The ID was replaced by a re-issue: issue again to get the current one.";
    HealthIdUnconfigured "health_id.unconfigured" SERVICE_UNAVAILABLE NONE,
        "ID発行は現在使えません。運用者に連絡してください。",
        "The server has no health-ID key configured: the operator must set one.";
    RoleUnknownCode "role.unknown_code" BAD_REQUEST Some("role"),
        "登録内容に誤りがあります。",
        "`role` must be one of facility, claims, insurer, payer or admin.";
    PartyNotFound "party.not_found" NOT_FOUND NONE,
        "該当する登録がありません。",
        "No party has this id.";
    IdempotencyKeyRequired "idempotency_key.required" BAD_REQUEST IDEMPOTENCY_KEY,
        "送信の設定に誤りがあります。システム担当者に連絡してください。",
        "Send an `Idempotency-Key` header naming the batch, unique per batch.";
    IdempotencyKeyFormat "idempotency_key.format" BAD_REQUEST IDEMPOTENCY_KEY,
        "送信の設定に誤りがあります。システム担当者に連絡してください。",
        "The `Idempotency-Key` must be 1 to 200 printable ASCII characters without spaces.";
    IdempotencyKeyTaken "idempotency_key.taken" CONFLICT IDEMPOTENCY_KEY,
        "同じ番号の送信がすでにあります。システム担当者に連絡してください。",
        "Another sender used this `Idempotency-Key`: choose a unique batch id.";
    UploadDeadline "upload.deadline" REQUEST_TIMEOUT NONE,
        "ファイルの取り込みが時間内に終わりませんでした。分けて送ってください。",
        "The upload and its apply exceeded the deadline: nothing was applied; split the file.";
    UploadBusy "upload.busy" TOO_MANY_REQUESTS NONE,
        "取り込みが混み合っています。少し待ってから送ってください。",
        "Uploads are at their limit: retry after `Retry-After` seconds.";
    BatchNotFound "batch.not_found" NOT_FOUND NONE,
        "該当する送信がありません。",
        "No batch of this party has this id.";
    EnrollmentRejected "enrollment.rejected" UNPROCESSABLE_ENTITY NONE,
        "ファイルに誤りのある行があり、何も取り込まれていません。誤りを直して送り直してください。",
        "Lines were rejected (see `errors`); nothing was applied. Fix them and send the file again with a new Idempotency-Key.";
    CardNotConfigured "card.not_configured" SERVICE_UNAVAILABLE NONE,
        "マイナ保険証での確認は現在使えません。保険証等で確認してください。",
        "The server has no JPKI (or card-surface) trust anchors: check by insurance number; the operator must install them.";
    CardRevocationUnavailable "card.revocation_unavailable" SERVICE_UNAVAILABLE NONE,
        "カードの失効確認ができないため確認できません。保険証等で確認してください。",
        "No current, verified CRL for the card's CA: check by insurance number; the operator must install the CA's current CRL (see /readyz).";
    ChallengeUnknown "challenge.unknown" NOT_FOUND CHALLENGE,
        "読み取りをやり直してください。",
        "No such challenge: request a new one.";
    ChallengeUsed "challenge.used" CONFLICT CHALLENGE,
        "読み取りをやり直してください。",
        "The challenge was used already: request a new one for each card operation.";
    ChallengeExpired "challenge.expired" GONE CHALLENGE,
        "時間切れです。カードをもう一度読み取ってください。",
        "The challenge expired: request a new one and sign it promptly.";
    ChallengeOtherParty "challenge.other_party" FORBIDDEN CHALLENGE,
        "読み取りをやり直してください。",
        "The challenge was issued to another party: use one issued to this party.";
    ChallengeWrongAudience "challenge.wrong_audience" FORBIDDEN CHALLENGE,
        "読み取りをやり直してください。",
        "The challenge was issued for another use: POST /v1/challenges for a facility's check or link, POST /v1/self/challenges for the holder's own requests.";
    CertificateMalformed "certificate.malformed" UNPROCESSABLE_ENTITY CERTIFICATE,
        "カードをもう一度読み取ってください。",
        "The certificate is not a readable X.509 certificate: read the card's user-authentication certificate again.";
    CertificateNotForAuthentication "certificate.not_for_authentication" UNPROCESSABLE_ENTITY CERTIFICATE,
        "カードをもう一度読み取ってください。",
        "Send the card's user-authentication certificate (not a CA's or the signing certificate).";
    CertificateUnknownIssuer "certificate.unknown_issuer" UNPROCESSABLE_ENTITY CERTIFICATE,
        "このカードでは確認できません。保険証等で確認してください。",
        "The certificate was not issued by a trusted JPKI user-authentication CA.";
    CertificateBadChainSignature "certificate.bad_chain_signature" UNPROCESSABLE_ENTITY CERTIFICATE,
        "カードをもう一度読み取ってください。",
        "The certificate's CA signature does not verify: it was altered in transit; read the card again.";
    CertificateIssuerNotValid "certificate.issuer_not_valid" UNPROCESSABLE_ENTITY CERTIFICATE,
        "保険証等で確認してください。端末の時計も確かめてください。",
        "The issuing CA is outside its validity period: check the reader PC's clock.";
    CertificateNotYetValid "certificate.not_yet_valid" UNPROCESSABLE_ENTITY CERTIFICATE,
        "端末の時計を確かめてください。",
        "The certificate is not valid yet: check the reader PC's clock.";
    CertificateExpired "certificate.expired" UNPROCESSABLE_ENTITY CERTIFICATE,
        "カードの電子証明書の有効期限が切れています。市区町村での更新を案内し、保険証等で確認してください。",
        "The card's certificate expired more than three months ago: the person renews it at the town hall.";
    CertificateRevoked "certificate.revoked" UNPROCESSABLE_ENTITY CERTIFICATE,
        "このカードの電子証明書は失効しています。保険証等で確認し、市区町村への相談を案内してください。",
        "The card's certificate is revoked: check by insurance number.";
    SignatureInvalid "signature.invalid" UNPROCESSABLE_ENTITY Some("signature"),
        "暗証番号の入力からやり直してください。",
        "The card's signature over the challenge does not verify: take a new challenge and sign it with the card.";
    CardSurfaceMalformed "card_surface.malformed" UNPROCESSABLE_ENTITY NONE,
        "カードをもう一度読み取ってください。",
        "The card's input-assistance records are not readable: read them again.";
    CardSurfaceUnknownIssuer "card_surface.unknown_issuer" UNPROCESSABLE_ENTITY Some("card_surface.issuer_certificate"),
        "このカードはここでは登録できません。",
        "The input-assistance data was not signed by a trusted issuer.";
    CardSurfaceIssuerNotValid "card_surface.issuer_not_valid" UNPROCESSABLE_ENTITY Some("card_surface.issuer_certificate"),
        "このカードはここでは登録できません。端末の時計も確かめてください。",
        "The input-assistance issuer's certificate is outside its validity period.";
    CardSurfaceHashMismatch "card_surface.hash_mismatch" UNPROCESSABLE_ENTITY Some("card_surface.signature"),
        "カードをもう一度読み取ってください。",
        "The records do not match their signed hashes: read them again, unaltered.";
    CardSurfaceBadIssuerSignature "card_surface.bad_issuer_signature" UNPROCESSABLE_ENTITY Some("card_surface.signature"),
        "カードをもう一度読み取ってください。",
        "The issuer's signature over the records does not verify.";
    CardSurfaceInternalAuthenticationFailed "card_surface.internal_authentication_failed" UNPROCESSABLE_ENTITY Some("card_surface.internal_authentication"),
        "カードをもう一度読み取ってください。",
        "The card's internal authentication over the challenge does not verify: the records did not come from this card now.";
    CardNotLinked "card.not_linked" NOT_FOUND NONE,
        "このカードは保険証として利用登録されていません。この場で登録できます。今回は保険証等で確認してください。",
        "The card is not linked to health insurance: link it (POST /v1/card-links) or check by insurance number.";
    CardNoCoverageToLink "card.no_coverage_to_link" NOT_FOUND NONE,
        "登録できる保険の記録がありません。加入している保険者への確認を案内してください。",
        "No coverage to link the card to: the person asks their insurer; check by insurance number meanwhile.";
    CardLinkedToAnotherPerson "card.linked_to_another_person" CONFLICT CERTIFICATE,
        "このカードは別の人に登録されています。運用者に連絡してください。",
        "The card is linked to another person: the operator must investigate.";
}

/// The remedies of a field that failed validation (`<field>.<fault>`), by fault.
pub fn fault_remedies(fault: Fault) -> (&'static str, &'static str) {
    match fault {
        Fault::Required => (
            "必要な項目が入力されていません。",
            "The member named in `field` is required.",
        ),
        Fault::Type => (
            "システムの送信内容に誤りがあります。システム担当者に連絡してください。",
            "The member named in `field` has the wrong JSON type (see the schema).",
        ),
        Fault::Format => (
            "入力の形式が違います。番号や日付を確かめてください。",
            "The value of `field` does not have the required form (see the schema's pattern).",
        ),
        Fault::CheckDigit => (
            "番号の検証番号が合いません。打ち間違いがないか確かめてください。",
            "The check digit does not match: the number was mistyped.",
        ),
        Fault::TooLong => (
            "入力が長すぎます。",
            "The value of `field` is longer than the schema allows.",
        ),
        Fault::MixedWidth => (
            "全角と半角が混ざっています。どちらかにそろえてください。",
            "Digits of one value must be all full-width or all half-width.",
        ),
        Fault::FullWidthSpace => (
            "全角スペースが含まれています。取り除いてください。",
            "Remove the full-width space (U+3000) from the value.",
        ),
        Fault::UnknownCode => (
            "該当するコードがありません。番号を確かめてください。",
            "The code is not one of the listed codes.",
        ),
        Fault::Range => (
            "値が範囲外です。",
            "The value is outside the range the schema gives.",
        ),
        Fault::CheckSymbol => (
            "IDの検査文字が合いません。打ち間違いがないか確かめてください。",
            "The ID's check symbol does not match: it was mistyped.",
        ),
    }
}

/// The table as Markdown: `docs/error-codes.md` is this text (a test holds it to the table).
pub fn markdown() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::from(
        "# Error codes\n\n\
         Generated from `src/api/codes.rs` (`ONSHI_WRITE_CODES=1 cargo test -p onshi --lib codes` \
         rewrites it); every error body carries `code`, `message`, `field` where there is one, \
         `remedy` (for the desk, Japanese) and `vendor_remedy` (for the vendor, English).\n\n\
         | code | status | field | remedy (desk) | vendor remedy |\n|---|---|---|---|---|\n",
    );
    for code in Code::ALL {
        let spec = code.spec();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            spec.code,
            spec.status.as_u16(),
            spec.field.map_or(String::new(), |f| format!("`{f}`")),
            cell(spec.remedy),
            cell(spec.vendor_remedy),
        ));
    }
    out.push_str(
        "\nA member that failed validation answers 400 `<member>.<fault>`, the member in `field`:\n\n\
         | fault | remedy (desk) | vendor remedy |\n|---|---|---|\n",
    );
    for fault in Fault::ALL {
        let (ja, en) = fault_remedies(*fault);
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            fault.as_str(),
            cell(ja),
            cell(en)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn docs_error_codes_md_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/error-codes.md");
        if std::env::var_os("ONSHI_WRITE_CODES").is_some() {
            std::fs::write(path, markdown()).unwrap();
        }
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == markdown(),
            "docs/error-codes.md is not the table of src/api/codes.rs: run \
             ONSHI_WRITE_CODES=1 cargo test -p onshi --lib codes"
        );
    }

    #[test]
    fn codes_are_unique_dotted_and_lower_case() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{s}"
            );
            assert!(s == "internal" || s.contains('.'), "{s}");
        }
    }

    #[test]
    fn every_code_has_both_remedies_and_an_error_status() {
        for code in Code::ALL {
            let spec = code.spec();
            assert!(spec.status.is_client_error() || spec.status.is_server_error());
            assert!(!spec.remedy.is_empty() && !spec.vendor_remedy.is_empty());
            assert!(
                !spec.remedy.is_ascii(),
                "{}: the desk's remedy is Japanese",
                spec.code
            );
        }
        for fault in Fault::ALL {
            let (ja, en) = fault_remedies(*fault);
            assert!(!ja.is_ascii() && en.is_ascii());
        }
    }
}
