//! `GET /desk/`: the reception page, and its script and style under `/desk/`. Static files of
//! this build (written for onshi, no framework, nothing from elsewhere), embedded in the binary.
//!
//! The page signs in with the facility's token, which it keeps in the tab's `sessionStorage`
//! only; it checks by number with `POST /v1/eligibility` (same origin) and by card through
//! `onshi-reader serve` on the reception PC (`http://127.0.0.1:<port>`), which holds its own
//! token and asks for the PIN itself. Every answer carries a strict Content-Security-Policy: no
//! inline script or style, nothing from another origin but the loopback agent, no framing, no
//! form submission (a form that ran without its script would otherwise put the token in a
//! URL); and `no-store`, `no-referrer`, `nosniff`.

use actix_web::HttpResponse;

use super::doc::{Body, Content, Doc, Reply};

const INDEX: &str = include_str!("desk/index.html");
const SCRIPT: &str = include_str!("desk/desk.js");
const STYLE: &str = include_str!("desk/desk.css");

/// The page's policy. `connect-src` names the server itself and the card reader agent on any
/// loopback port (the page lets the desk set the agent's port).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self' http://127.0.0.1:*; \
    form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

fn file(media: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(media)
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .body(body)
}

/// `GET /desk`: the page is `/desk/` (its files are named relative to it).
pub async fn to_page() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/desk/"))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// `GET /desk/`.
pub async fn page() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

/// `GET /desk/desk.js`.
pub async fn script() -> HttpResponse {
    file("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /desk/desk.css`.
pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
}

pub const TO_PAGE_DOC: Doc = Doc {
    id: "deskRedirect",
    tag: "desk",
    summary: "The reception page, without its final slash.",
    description: "Redirects (308) to `/desk/`, for a clerk who types the address.",
    body: Body::None,
    replies: &[Reply {
        status: 308,
        description: "`Location: /desk/`.",
        content: Content::Empty,
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};

pub const PAGE_DOC: Doc = Doc {
    id: "deskPage",
    tag: "desk",
    summary: "The reception page.",
    description: "Japanese first. Sign in with the facility's token (kept in the tab's \
        sessionStorage only), check by number (`POST /v1/eligibility`, with the consent flags) or \
        by My Number card through `onshi-reader serve` on the reception PC, and read the answer \
        as a clerk does: the validity in words, copay, certificates shown or withheld, \
        advisories, the check id; errors with their remedy and code. Served with a strict \
        Content-Security-Policy (`connect-src 'self' http://127.0.0.1:*`), `no-store` and \
        `Referrer-Policy: no-referrer`.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The page.",
        content: Content::File("text/html"),
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};

pub const SCRIPT_DOC: Doc = Doc {
    id: "deskScript",
    tag: "desk",
    summary: "The reception page's script.",
    description: "No framework; server text is only ever shown as text.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The script.",
        content: Content::File("text/javascript"),
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};

pub const STYLE_DOC: Doc = Doc {
    id: "deskStyle",
    tag: "desk",
    summary: "The reception page's style sheet.",
    description: "Plain and high-contrast, focus always visible.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The style sheet.",
        content: Content::File("text/css"),
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};

#[cfg(test)]
mod tests {
    use super::{CONTENT_SECURITY_POLICY, INDEX, SCRIPT};

    #[test]
    fn the_page_has_no_inline_script_and_keeps_the_token_out_of_storage_that_lasts() {
        assert!(INDEX.contains(r#"<html lang="ja">"#));
        // Only the one external script, no handler attributes.
        assert_eq!(INDEX.matches("<script").count(), 1);
        assert!(INDEX.contains(r#"<script src="/desk/desk.js" defer></script>"#));
        assert!(!INDEX.contains(" onclick=") && !INDEX.contains(" onsubmit="));
        assert!(
            !INDEX.contains("style="),
            "no inline style: the policy refuses it"
        );
        for never in [
            "localStorage",
            "document.cookie",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
        ] {
            // Its comments may say what it never does.
            let mut code = SCRIPT.lines().filter(|l| !l.trim_start().starts_with("//"));
            assert!(!code.any(|l| l.contains(never)), "desk.js uses {never}");
        }
        assert!(SCRIPT.contains("sessionStorage"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }

    #[test]
    fn every_input_has_a_label() {
        for (i, _) in INDEX.match_indices("<input ") {
            let tag = &INDEX[i..i + INDEX[i..].find('>').unwrap_or(0)];
            let labelled = match tag
                .split(r#"id=""#)
                .nth(1)
                .and_then(|s| s.split('"').next())
            {
                Some(id) => INDEX.contains(&format!(r#"for="{id}""#)),
                None => false,
            };
            // A checkbox sits inside its label.
            let wrapped = tag.contains(r#"type="checkbox""#)
                && INDEX[..i].rfind("<label").unwrap_or(0)
                    > INDEX[..i].rfind("</label>").unwrap_or(0);
            assert!(labelled || wrapped, "no label for {tag}");
        }
    }
}
