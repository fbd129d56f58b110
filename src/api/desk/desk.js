// The reception page of onshi (GET /desk/). No framework, no inline script (the page's
// Content-Security-Policy forbids it). Server text is only ever set as textContent, never as
// HTML. The facility token is kept in this tab's sessionStorage only: never localStorage, a
// cookie or a URL; signing out removes it. The card check goes to `onshi-reader serve` on this
// PC, which holds its own token and asks for the PIN itself: the PIN never reaches this page.
"use strict";

(function () {
  const TOKEN_KEY = "onshi.desk.token";

  const VALIDITY = {
    1: ["有効", "保険診療を受けられます。", "ok"],
    2: ["無効（資格喪失）", "この保険の資格はなくなっています。新しい保険証・資格確認書を確認してください。", "ng"],
    3: ["無効（新しい資格あり）", "この保険の資格はなくなっていますが、新しい資格があります。新しい保険証・資格確認書を確認してください。", "ng"],
    4: ["該当資格なし", "該当する資格がありません。保険者番号・記号・番号・枝番・生年月日を確かめてください。", "ng"],
    5: ["複数該当", "複数の資格が該当しました。枝番を確かめて、もう一度確認してください。", "warn"],
    6: ["有効（未登録）", "医療扶助の資格があります（この月の医療券等は未登録）。福祉事務所に確認してください。", "warn"],
  };
  const SEX = { "1": "男", "2": "女", "3": "未設定" };
  const RELATIONSHIP = { "1": "本人", "2": "家族" };
  const CARD_CLASS = {
    "01": "一般", "02": "退職", "03": "短期（一般）", "04": "短期（退職）", "05": "資格証明書",
    "06": "特例退職", "07": "自衛官診療証", "A1": "医療扶助",
  };
  const LOSS_REASON = { "01": "死亡", "02": "生活保護の開始", "03": "他の保険に加入", "99": "その他" };
  const LIMIT_CATEGORY = { A01: "ア", A02: "イ", A03: "ウ", A04: "エ", A05: "オ", A06: "オ（境）" };
  const DISEASE = {
    "1": "人工透析を要する慢性腎不全",
    "2": "先天性血液凝固因子障害",
    "3": "血液製剤に起因するHIV感染症",
  };
  const CONSENT = {
    medication: "薬剤情報", checkups: "特定健診等の情報", diagnosis: "診療情報",
    surgery: "手術情報", limit_certificate: "限度額適用認定証", specific_diseases: "特定疾病療養受療証",
  };
  const ADVISORY = {
    "match.several": "複数の資格が該当します。カードの枝番を確かめて、もう一度確認してください。",
    "coverage.ends": "この資格は終了日が決まっています。その日からの診療はこの保険では受けられません。",
    "card.expired": "保険証の有効期限は過ぎていますが、資格は有効です。",
    "limit_certificate.expired": "限度額適用認定証の有効期限が切れています。",
    "card.certificate_expired": "カードの電子証明書の有効期限が切れています（期限後3か月は資格確認できます）。市区町村での更新を案内してください。",
    "card.certificate_expires_soon": "カードの電子証明書の有効期限が近づいています。市区町村での更新を案内してください。",
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // --- the token: this tab's sessionStorage only -------------------------------------------
  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showSignedIn() {
    const signedIn = token() !== null;
    $("signed-state").textContent = signedIn ? "サインイン中" : "未サインイン";
    $("signin-form").hidden = signedIn;
    $("signout-button").hidden = !signedIn;
    $("number-button").disabled = !signedIn;
  }

  function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (value === "") {
      showError({ code: "desk.token_required", remedy: "施設のトークンを入力してください。" });
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    showSignedIn();
    $("insurer_number").focus();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    clearResult("サインアウトしました。");
    showSignedIn();
    $("token").focus();
  }

  // --- input ---------------------------------------------------------------------------------
  // "19800401", "1980/04/01" and "1980-04-01" all mean 1980-04-01; anything else is sent as
  // typed, and the server names the field at fault.
  function date(value) {
    const v = value.trim();
    const m = /^(\d{4})[-/]?(\d{2})[-/]?(\d{2})$/.exec(v);
    return m ? `${m[1]}-${m[2]}-${m[3]}` : v;
  }

  function numberQuery() {
    const query = {};
    for (const name of ["insurer_number", "symbol", "number", "branch"]) {
      const v = $(name).value.trim();
      if (v !== "") query[name] = v;
    }
    query.birth_date = date($("birth_date").value);
    const care = date($("date_of_care").value);
    if (care !== "") query.date_of_care = care;
    query.limit_certificate_consent = $("limit_certificate_consent").checked;
    query.specific_disease_consent = $("specific_disease_consent").checked;
    return query;
  }

  // --- calls ---------------------------------------------------------------------------------
  async function checkByNumber(event) {
    event.preventDefault();
    const bearer = token();
    if (bearer === null) {
      showError({ code: "desk.signed_out", remedy: "先にサインインしてください。" });
      return;
    }
    busy("確認しています…");
    let response;
    try {
      response = await fetch("/v1/eligibility", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": `Bearer ${bearer}` },
        body: JSON.stringify(numberQuery()),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      showError({
        code: "desk.unreachable",
        remedy: "資格確認のサーバーにつながりません。ネットワークを確かめ、その間は保険証等で確認してください。",
      });
      return;
    }
    await showResponse(response, "番号で確認");
  }

  function agentAddress() {
    return $("agent").value.trim().replace(/\/+$/, "");
  }

  const AGENT_DOWN = {
    code: "desk.agent_unreachable",
    remedy: "カード読み取りアプリ（onshi-reader serve）が起動していません。起動してからもう一度お試しください。今は保険証の番号で確認できます。",
  };

  async function checkByCard(event) {
    event.preventDefault();
    const consents = {};
    for (const name of Object.keys(CONSENT)) consents[name] = $(`card_${name}`).checked;
    const body = { consents };
    const care = date($("card_date_of_care").value);
    if (care !== "") body.date_of_care = care;
    busy("カードを読み取り機に置き、読み取り機で暗証番号を入力してもらってください…");
    let response;
    try {
      response = await fetch(`${agentAddress()}/check`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      showError(AGENT_DOWN);
      return;
    }
    await showResponse(response, "マイナンバーカードで確認");
  }

  async function agentStatus() {
    const line = $("agent-status");
    try {
      const response = await fetch(`${agentAddress()}/status`, { credentials: "omit", cache: "no-store" });
      const s = await response.json();
      if (!response.ok) {
        line.textContent = (s.error && s.error.remedy) || "読み取りアプリが応答しません。";
        return;
      }
      const parts = [
        "読み取りアプリ: 起動中",
        s.service ? (s.reader ? "読み取り機: 接続あり" : "読み取り機: なし") : "カードの仕組み（pcscd）: 停止",
        s.card ? "カード: あり" : "カード: なし",
      ];
      if (s.busy) parts.push("確認中");
      line.textContent = parts.join(" / ");
    } catch (e) {
      line.textContent = AGENT_DOWN.remedy;
    }
  }

  async function showResponse(response, how) {
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.ok && body && typeof body.validity === "number") {
      showAnswer(body, how);
    } else if (body && body.error) {
      showError(body.error);
    } else {
      showError({ code: `http.${response.status}`, remedy: "確認できませんでした。もう一度お試しください。" });
    }
  }

  // --- output --------------------------------------------------------------------------------
  function clearResult(text) {
    const out = $("result-body");
    out.replaceChildren(el("p", text, "hint"));
  }

  function busy(text) {
    const out = $("result-body");
    out.replaceChildren(el("p", text, "hint"));
    $("result").setAttribute("aria-busy", "true");
  }

  function done(nodes) {
    $("result-body").replaceChildren(...nodes);
    $("result").setAttribute("aria-busy", "false");
  }

  function showError(error) {
    const box = el("div", null, "error");
    box.setAttribute("role", "alert");
    box.id = "error";
    box.append(el("p", "確認できませんでした", "error-title"));
    const remedy = el("p", error.remedy || error.message || "もう一度お試しください。", "remedy");
    remedy.id = "error-remedy";
    box.append(remedy);
    const detail = el("p", null, "detail");
    const code = el("code", error.code || "");
    code.id = "error-code";
    detail.append("コード: ", code);
    if (error.field) detail.append(`（項目: ${error.field}）`);
    box.append(detail);
    if (error.message && error.remedy) box.append(el("p", error.message, "detail"));
    done([box]);
  }

  function row(list, label, value) {
    if (value === undefined || value === null || value === "") return;
    list.append(el("dt", label), el("dd", value));
  }

  function copay(ratio) {
    const n = parseInt(ratio, 10);
    if (Number.isNaN(n)) return ratio;
    return n % 10 === 0 ? `${n / 10}割` : `${n}%`;
  }

  // An RFC 3339 time as the desk reads it: Japan's date and time to the minute.
  function japanTime(value) {
    const t = new Date(value);
    if (Number.isNaN(t.getTime())) return value;
    return t.toLocaleString("ja-JP", {
      timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit",
    });
  }

  function period(from, to) {
    if (!from && !to) return "";
    return `${from || ""}〜${to || ""}`;
  }

  function showAnswer(answer, how) {
    const [words, guidance, tone] = VALIDITY[answer.validity] || [`資格有効性 ${answer.validity}`, "", "warn"];
    const nodes = [];
    const head = el("div", null, `validity ${tone}`);
    const word = el("p", words, "validity-words");
    word.id = "validity";
    head.append(el("span", "資格有効性", "validity-label"), word, el("p", guidance, "guidance"));
    nodes.push(head);

    const list = el("dl", null, "answer");
    list.id = "answer";
    const c = answer.coverage;
    if (c) {
      row(list, "氏名", c.name_kana ? `${c.name}（${c.name_kana}）` : c.name);
      row(list, "生年月日", c.birth_date);
      row(list, "性別", SEX[c.sex] || c.sex);
      row(list, "保険者", c.insurer_name ? `${c.insurer_name}（${c.insurer_number}）` : c.insurer_number);
      row(list, "記号・番号・枝番", [c.symbol || "", c.number, c.branch || ""].join(" ・ "));
      row(list, "本人・家族", RELATIONSHIP[c.relationship] || c.relationship);
      row(list, "区分", CARD_CLASS[c.card_classification] || c.card_classification);
      const ratio = el("dd", copay(c.copay_ratio), "copay");
      ratio.id = "copay";
      list.append(el("dt", "負担割合"), ratio);
      if (c.preschool) row(list, "未就学者", "該当");
      row(list, "資格取得日", c.acquired_on);
      row(list, "資格喪失日", c.lost_on);
      if (c.loss_reason) row(list, "喪失事由", LOSS_REASON[c.loss_reason] || c.loss_reason);
      row(list, "保険証の有効期間", period(c.card_valid_from, c.card_valid_to));
      if (c.elderly_recipient) {
        const e = c.elderly_recipient;
        row(list, "高齢受給者証", `負担割合 ${copay(e.copay_ratio)} ${period(e.valid_from, e.valid_to)}`);
      }
      if (c.limit_certificate) {
        const l = c.limit_certificate;
        row(list, "限度額適用認定証",
          `区分 ${LIMIT_CATEGORY[l.category] || l.category} ${period(l.valid_from, l.valid_to)}`);
      }
      for (const d of c.specific_disease_certificates || []) {
        const cap = d.self_pay_cap != null ? ` 自己負担限度額 月${d.self_pay_cap.toLocaleString("ja-JP")}円` : "";
        row(list, "特定疾病療養受療証", `${DISEASE[d.category] || d.category}${cap} ${period(d.valid_from, d.valid_to)}`);
      }
    }
    for (const w of answer.withheld || []) {
      const what = w === "limit_certificate" ? "限度額適用認定証" : "特定疾病療養受療証";
      row(list, what, "あり（患者の同意がないため表示していません）");
    }
    for (const p of answer.public_expenses || []) {
      const cap = p.self_pay_cap != null ? ` 月${p.self_pay_cap.toLocaleString("ja-JP")}円まで` : "";
      row(list, "公費", `法別${p.houbetsu} 負担者番号 ${p.payer_number} 受給者番号 ${p.recipient_number} ${period(p.valid_from, p.valid_to)}${cap}`);
    }
    for (const k of answer.consents || []) {
      row(list, "同意（カード）", `${CONSENT[k.kind] || k.kind}（${japanTime(k.lapses_at)} まで）`);
    }
    row(list, "照会番号", answer.reference_number);
    row(list, "確認方法", how);
    const id = el("dd", answer.check_id, "check-id");
    id.id = "check-id";
    list.append(el("dt", "確認ID"), id);
    nodes.push(list);

    if ((answer.advisories || []).length > 0) {
      nodes.push(el("h3", "お知らせ"));
      const ul = el("ul", null, "advisories");
      ul.id = "advisories";
      for (const a of answer.advisories) {
        const item = el("li", ADVISORY[a.code] || a.message);
        item.dataset.code = a.code;
        if (ADVISORY[a.code] && a.message) item.append(el("span", ` (${a.message})`, "detail"));
        ul.append(item);
      }
      nodes.push(ul);
    }
    done(nodes);
  }

  // --- wiring --------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout-button").addEventListener("click", signOut);
    $("number-form").addEventListener("submit", checkByNumber);
    $("card-form").addEventListener("submit", checkByCard);
    $("agent-status-button").addEventListener("click", agentStatus);
    showSignedIn();
    agentStatus();
  });
})();
