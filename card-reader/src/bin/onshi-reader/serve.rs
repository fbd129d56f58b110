//! `onshi-reader serve`: the reception page's card checks, on this PC only.
//!
//! The page (`GET /desk/` of the onshi server) cannot reach a card reader; this small HTTP
//! server on a loopback address does it for the page, running the same flow as `check`
//! ([`crate::check::check_card`]). It holds the facility token itself (`--token-file`) and asks
//! for the PIN on its own terminal without echo (or reads one line of standard input per check
//! with `--pin-stdin`): neither ever passes through the page or HTTP.
//!
//! | request | answer |
//! |---|---|
//! | `GET /status` | `{"service", "reader", "card", "busy"}`: pcscd answers, a reader is there, a card is on it, a check runs |
//! | `POST /check` `{"date_of_care"?, "consents"?}` | the server's eligibility answer, as sent; or `{"error": {"code", "message", "remedy", "field"?}}` |
//! | `OPTIONS` of either | the CORS preflight, for the allowed origin only |
//!
//! Who may call: only the page's origin (`--allow-origin`, by default the origin of
//! `--server`). Every request must carry that `Origin`; any other, or none, is 403 with no CORS
//! headers, so no other web page can make this PC read a card. Chromium's private network
//! access asks before a public page calls a loopback address: the preflight answers
//! `Access-Control-Allow-Private-Network: true` for the allowed origin. One check at a time
//! (409 while one runs); bodies of at most [`BODY_MAX`] bytes.
//!
//! Error codes besides the server's own (passed on with its status and `remedy`):
//! `agent.origin_forbidden` 403, `agent.busy` 409, `agent.not_found` 404,
//! `agent.method_not_allowed` 405, `agent.body_too_large` 413, `agent.body_invalid` 400 (with
//! `field`); from the reader: `reader.service_unavailable` and `reader.no_reader` 503,
//! `reader.no_card` 408, `reader.not_my_number_card`, `reader.wrong_pin` (the remedy says the
//! tries left), `reader.pin_blocked`, `reader.pin_not_verified`, `reader.card_removed`,
//! `reader.card_error` and `reader.pin_input` 422, `server.unreachable` 502,
//! `reader.unexpected` 500. Every one has a Japanese `remedy` for the desk.
//!
//! The `Origin` check keeps other web pages out; it does not keep out a program of this PC,
//! which could send any header, but could as well talk to pcscd itself.
//!
//! Deliberate simplification: requests are read one after the other on one thread, and each
//! check runs on a thread of its own, so that `/status` and a refused second check are answered
//! while a check waits for the card or the PIN.

use std::io::Read as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use card_reader::binding::Origin;
use card_reader::reader::Presence;
use card_reader::server::{Consents, ServerClient};
use card_reader::{Error, Readers};
use serde_json::{json, Map, Value};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::check::{check_card, facility_client, write_face, AtReader};
use crate::cli::{FaceArgs, ServeArgs};
use crate::outcome::{desk_message, Failure};

/// The largest request body read: a check's body is a date and six flags.
pub const BODY_MAX: usize = 4 * 1024;

/// The consents a check may carry, as the server's card check names them.
const CONSENTS: [&str; 6] = [
    "medication",
    "checkups",
    "diagnosis",
    "surgery",
    "limit_certificate",
    "specific_diseases",
];

struct Agent {
    client: ServerClient,
    allowed: String,
    reader: Option<String>,
    timeout: u64,
    pin_stdin: bool,
    face: FaceArgs,
    busy: AtomicBool,
}

/// Serves until the process is stopped.
pub fn run(args: &ServeArgs) -> Result<(), Failure> {
    if !args.listen.ip().is_loopback() {
        return Err(Failure::Input(format!(
            "--listen {} is not a loopback address: the agent serves this PC only \
             (127.0.0.1 or [::1])",
            args.listen
        )));
    }
    let client = facility_client(
        &args.server,
        args.token_file.as_deref(),
        args.server_timeout,
    )?;
    let allowed = match &args.allow_origin {
        Some(origin) => {
            Origin::of_url(origin).map_err(|e| Failure::Input(format!("--allow-origin: {e}")))?
        }
        None => client.origin()?,
    };
    let http = Server::http(args.listen)
        .map_err(|e| Failure::Input(format!("cannot listen on {}: {e}", args.listen)))?;
    let bound = http
        .server_addr()
        .to_ip()
        .map_or_else(|| args.listen.to_string(), |a| a.to_string());
    eprintln!(
        "onshi-reader serve: listening on http://{bound} for the page at {}",
        allowed.as_str()
    );
    let agent = Arc::new(Agent {
        client,
        allowed: allowed.as_str().to_owned(),
        reader: args.reader.clone(),
        timeout: args.timeout,
        pin_stdin: args.pin_stdin,
        face: args.face.clone(),
        busy: AtomicBool::new(false),
    });
    for request in http.incoming_requests() {
        agent.clone().handle(request);
    }
    Ok(())
}

/// An answer: status and JSON body.
struct Answer(u16, Value);

impl Agent {
    fn handle(self: Arc<Self>, request: Request) {
        let origin = header(&request, "Origin");
        if origin.as_deref() != Some(self.allowed.as_str()) {
            let answer = refusal(
                403,
                "agent.origin_forbidden",
                "this origin may not use the card reader agent",
                "この画面からはカード読み取りを使えません。システム担当者に設定（--allow-origin）を確かめてもらってください。",
            );
            // No CORS headers: the calling page cannot even read the refusal.
            respond(request, answer, None);
            return;
        }
        let path = request
            .url()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let known = matches!(path.as_str(), "/status" | "/check");
        let answer = match (request.method(), path.as_str()) {
            (Method::Options, _) if known => {
                self.preflight(request);
                return;
            }
            (Method::Get, "/status") => self.status(),
            (Method::Post, "/check") => {
                if self.busy.swap(true, Ordering::SeqCst) {
                    refusal(
                        409,
                        "agent.busy",
                        "another card check is running",
                        "別のカード確認が進んでいます。終わってからもう一度お試しください。",
                    )
                } else {
                    // The check waits for the card and the PIN: on its own thread, so that the
                    // page's status requests (and a refused second check) are still answered.
                    std::thread::spawn(move || {
                        let mut request = request;
                        let free = Free(&self.busy);
                        let answer = match read_body(&mut request) {
                            Ok(body) => self.check(&body),
                            Err(refused) => refused,
                        };
                        // Free before answering: the page may start the next check at once.
                        drop(free);
                        respond(request, answer, Some(&self.allowed));
                    });
                    return;
                }
            }
            _ if known => refusal(
                405,
                "agent.method_not_allowed",
                "use GET /status or POST /check",
                "システムの設定に誤りがあります。システム担当者に連絡してください。",
            ),
            _ => refusal(
                404,
                "agent.not_found",
                "no such path: the agent serves GET /status and POST /check",
                "システムの設定に誤りがあります。システム担当者に連絡してください。",
            ),
        };
        respond(request, answer, Some(&self.allowed));
    }

    fn preflight(&self, request: Request) {
        let mut response = Response::empty(204);
        for (name, value) in cors(&self.allowed) {
            response.add_header(raw_header(name, &value));
        }
        for (name, value) in [
            ("Access-Control-Allow-Methods", "GET, POST"),
            ("Access-Control-Allow-Headers", "Content-Type"),
            ("Access-Control-Allow-Private-Network", "true"),
            ("Access-Control-Max-Age", "600"),
        ] {
            response.add_header(raw_header(name, value));
        }
        let _ = request.respond(response);
    }

    fn status(&self) -> Answer {
        let busy = self.busy.load(Ordering::SeqCst);
        let Ok(readers) = Readers::establish() else {
            return Answer(
                200,
                json!({"service": false, "reader": false, "card": false, "busy": busy}),
            );
        };
        let names = readers.resolve(self.reader.as_deref()).unwrap_or_default();
        // A zero timeout answers the readers' current state at once.
        let card = !names.is_empty()
            && readers
                .wait_for(&names, Presence::Present, Duration::ZERO)
                .is_ok();
        Answer(
            200,
            json!({"service": true, "reader": !names.is_empty(), "card": card, "busy": busy}),
        )
    }

    fn check(&self, body: &[u8]) -> Answer {
        let (date_of_care, consents) = match parse_check(body) {
            Ok(parsed) => parsed,
            Err(answer) => return answer,
        };
        eprintln!("onshi-reader serve: a card check for the page");
        let at = AtReader {
            reader: self.reader.as_deref(),
            timeout: self.timeout,
            pin_stdin: self.pin_stdin,
        };
        match check_card(&self.client, &at, date_of_care, consents) {
            Ok(answer) => {
                // The page gets the answer whatever happens to the face file; the failure is
                // the agent's to report.
                if let Err(failure) = write_face(&self.face, &answer) {
                    eprintln!(
                        "onshi-reader serve: no face file: {}",
                        failed(&failure).1["error"]["message"]
                            .as_str()
                            .unwrap_or_default()
                    );
                }
                Answer(200, answer.raw().clone())
            }
            Err(failure) => {
                let answer = failed(&failure);
                eprintln!(
                    "onshi-reader serve: the check failed: {}",
                    answer.1["error"]["message"].as_str().unwrap_or_default()
                );
                answer
            }
        }
    }
}

/// Marks the agent free again when the check's thread ends, however it ends.
struct Free<'a>(&'a AtomicBool);

impl Drop for Free<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn header(request: &Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_owned())
}

fn raw_header(name: &str, value: &str) -> Header {
    // Every name and value here is ASCII, fixed or an origin checked by `Origin::of_url`.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("an ASCII header")
}

fn cors(allowed: &str) -> [(&'static str, String); 2] {
    [
        ("Access-Control-Allow-Origin", allowed.to_owned()),
        ("Vary", "Origin".to_owned()),
    ]
}

fn respond(request: Request, Answer(status, body): Answer, allowed: Option<&str>) {
    let mut response = Response::from_string(body.to_string()).with_status_code(status);
    response.add_header(raw_header(
        "Content-Type",
        "application/json; charset=utf-8",
    ));
    response.add_header(raw_header("Cache-Control", "no-store"));
    response.add_header(raw_header("X-Content-Type-Options", "nosniff"));
    if let Some(allowed) = allowed {
        for (name, value) in cors(allowed) {
            response.add_header(raw_header(name, &value));
        }
    }
    // A page that went away meanwhile cannot be told anything.
    let _ = request.respond(response);
}

fn refusal(status: u16, code: &str, message: &str, remedy: &str) -> Answer {
    Answer(
        status,
        json!({"error": {"code": code, "message": message, "remedy": remedy}}),
    )
}

fn read_body(request: &mut Request) -> Result<Vec<u8>, Answer> {
    let too_large = || {
        refusal(
            413,
            "agent.body_too_large",
            "the request body is too large",
            "システムの送信内容に誤りがあります。システム担当者に連絡してください。",
        )
    };
    if request.body_length().is_some_and(|n| n > BODY_MAX) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(BODY_MAX as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| invalid(None, "the request body could not be read"))?;
    if body.len() > BODY_MAX {
        return Err(too_large());
    }
    Ok(body)
}

fn invalid(field: Option<&str>, message: &str) -> Answer {
    let mut answer = refusal(
        400,
        "agent.body_invalid",
        message,
        "システムの送信内容に誤りがあります。システム担当者に連絡してください。",
    );
    if let Some(field) = field {
        answer.1["error"]["field"] = json!(field);
    }
    answer
}

/// `{"date_of_care"?: "YYYY-MM-DD" | "" | null, "consents"?: {<name>: bool, ...}}`; unknown
/// members are refused, never ignored. The date's form is the server's to judge.
fn parse_check(body: &[u8]) -> Result<(Option<String>, Consents), Answer> {
    let body = if body.is_empty() { b"{}" } else { body };
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid(None, "the body must be one JSON object"));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !["date_of_care", "consents"].contains(&k.as_str()))
    {
        return Err(invalid(Some(unknown), "unknown member"));
    }
    let date_of_care = match map.get("date_of_care") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid(Some("date_of_care"), "a YYYY-MM-DD string")),
    };
    let given = match map.get("consents") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(given)) => given.clone(),
        Some(_) => return Err(invalid(Some("consents"), "an object of flags")),
    };
    if let Some(unknown) = given.keys().find(|k| !CONSENTS.contains(&k.as_str())) {
        return Err(invalid(
            Some(&format!("consents.{unknown}")),
            "unknown consent",
        ));
    }
    let mut flags = [false; 6];
    for (flag, name) in flags.iter_mut().zip(CONSENTS) {
        *flag = match given.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid(Some(&format!("consents.{name}")), "true or false")),
        };
    }
    let [medication, checkups, diagnosis, surgery, limit_certificate, specific_diseases] = flags;
    Ok((
        date_of_care,
        Consents {
            medication,
            checkups,
            diagnosis,
            surgery,
            limit_certificate,
            specific_diseases,
        },
    ))
}

/// A failed check as the page shows it: a code, the message, and a remedy for the desk.
fn failed(failure: &Failure) -> Answer {
    let e = match failure {
        Failure::Input(message) => {
            return refusal(
                422,
                "reader.pin_input",
                message,
                "暗証番号を受け取れませんでした。もう一度お試しください。",
            )
        }
        Failure::Card(e) => e,
    };
    if let Error::ServerRefused {
        status,
        code,
        message,
        field,
        remedy,
    } = e
    {
        let mut answer = refusal(
            *status,
            code,
            message,
            remedy
                .as_deref()
                .unwrap_or("確認できませんでした。もう一度お試しください。"),
        );
        if let Some(field) = field {
            answer.1["error"]["field"] = json!(field);
        }
        return answer;
    }
    let tries;
    let (status, code, remedy) = match e {
        Error::ServiceUnavailable(_) => (
            503,
            "reader.service_unavailable",
            "カード読み取りの仕組み（pcscd）が動いていません。システム担当者に連絡し、今回は保険証等で確認してください。",
        ),
        Error::NoReader { .. } => (
            503,
            "reader.no_reader",
            "カード読み取り機が見つかりません。接続を確かめてください。",
        ),
        Error::NoCard { .. } => (
            408,
            "reader.no_card",
            "カードが置かれませんでした。カードを読み取り機に置いて、もう一度お試しください。",
        ),
        Error::NotMyNumberCard => (
            422,
            "reader.not_my_number_card",
            "マイナンバーカードではありません。マイナンバーカードか、保険証・資格確認書で確認してください。",
        ),
        Error::WrongPin { tries_left } => {
            tries = format!(
                "暗証番号が違います（残り{tries_left}回）。もう一度ゆっくり入力してもらってください。顔認証や目視確認でも確認できます。"
            );
            (422, "reader.wrong_pin", tries.as_str())
        }
        Error::PinBlocked => (
            422,
            "reader.pin_blocked",
            "暗証番号がロックされています。解除は市区町村の窓口です。今回は顔認証・目視確認か保険証等で確認してください。",
        ),
        Error::PinNotVerified => (
            422,
            "reader.pin_not_verified",
            "暗証番号の確認ができていません。もう一度お試しください。",
        ),
        Error::CardRemoved => (
            422,
            "reader.card_removed",
            "読み取り中にカードが外れました。カードを置いたままにして、もう一度お試しください。",
        ),
        Error::Card { .. } => (
            422,
            "reader.card_error",
            "カードを読み取れませんでした。もう一度お試しください。続くときは保険証等で確認してください。",
        ),
        Error::ServerUnreachable { .. } => (
            502,
            "server.unreachable",
            "資格確認のサーバーにつながりません。ネットワークを確かめ、その間は保険証等で確認してください。",
        ),
        Error::ServerRefused { .. } | Error::Unexpected(_) => (
            500,
            "reader.unexpected",
            "問題が起きました。もう一度お試しください。続くときはシステム担当者に連絡してください。",
        ),
    };
    refusal(status, code, &desk_message(e), remedy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_body_is_a_date_and_known_flags() {
        let (date, consents) =
            parse_check(br#"{"date_of_care": "2026-11-24", "consents": {"surgery": true}}"#)
                .unwrap_or_else(|a| panic!("{}", a.1));
        assert_eq!(date.as_deref(), Some("2026-11-24"));
        assert!(consents.surgery && !consents.medication && !consents.limit_certificate);
        let (date, consents) = parse_check(b"").unwrap_or_else(|a| panic!("{}", a.1));
        assert_eq!((date, consents), (None, Consents::default()));
        for (bad, field) in [
            (&br#"{"pin": "1234"}"#[..], Some("pin")),
            (
                br#"{"consents": {"everything": true}}"#,
                Some("consents.everything"),
            ),
            (
                br#"{"consents": {"surgery": "yes"}}"#,
                Some("consents.surgery"),
            ),
            (br#"{"date_of_care": 20261124}"#, Some("date_of_care")),
            (b"[]", None),
            (b"{", None),
        ] {
            let Err(Answer(status, body)) = parse_check(bad) else {
                panic!("{} accepted", String::from_utf8_lossy(bad));
            };
            assert_eq!(status, 400);
            assert_eq!(body["error"]["code"], "agent.body_invalid");
            assert_eq!(body["error"]["field"].as_str(), field);
        }
    }

    #[test]
    fn every_failure_has_a_japanese_remedy_and_a_refusal_keeps_the_servers() {
        let refused = Failure::Card(Error::ServerRefused {
            status: 404,
            code: "card.not_linked".into(),
            message: "not linked".into(),
            field: None,
            remedy: Some("登録されていません。".into()),
        });
        let Answer(status, body) = failed(&refused);
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "card.not_linked");
        assert_eq!(body["error"]["remedy"], "登録されていません。");
        for e in [
            Error::NoCard {
                waited: Duration::from_secs(1),
            },
            Error::WrongPin { tries_left: 2 },
            Error::PinBlocked,
            Error::NoReader { wanted: None },
        ] {
            let Answer(status, body) = failed(&Failure::Card(e));
            assert!(status >= 400);
            let remedy = body["error"]["remedy"].as_str().unwrap_or_default();
            assert!(!remedy.is_empty() && !remedy.is_ascii(), "{body}");
        }
        let Answer(_, body) = failed(&Failure::Card(Error::WrongPin { tries_left: 2 }));
        assert!(body["error"]["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("残り2回"));
    }
}
