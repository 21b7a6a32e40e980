// The crypto inspector: everything the client checked about one message, for people who
// want to see it (and for support: "what exactly failed?"). Checks come first, because
// that is the question; the raw fields and the certificate follow.
//
// Each check says its outcome in text and symbol, not only in colour.

import { el, openDialog, setText, srOnly } from "./dom.js";
import { errorText, formatFullTime } from "./format.js";

/**
 * Open the inspector for one message.
 *
 * @param {object} ctx the app context (see app.js)
 * @param {string} conversationId
 * @param {string} messageKey the message's `key`
 * @returns {{close: () => void}}
 */
export function openInspector(ctx, conversationId, messageKey) {
  const { session } = ctx;
  const { body, close } = openDialog({
    host: ctx.host,
    title: "Message details",
    testid: "inspector-dialog",
    className: "inspector-dialog",
    description: "What this device checked before showing the message, and the raw values it checked.",
  });
  const loading = el("p", { class: "dialog-loading", role: "status" }, "Reading the message's checks…");
  body.append(loading);
  (async () => {
    let report;
    try {
      report = await session.inspect(conversationId, messageKey);
    } catch (error) {
      setText(loading, `Could not inspect this message: ${errorText(error)}`);
      loading.classList.add("is-error");
      return;
    }
    loading.remove();
    body.append(...renderReport(report || {}));
  })();
  return { close };
}

function renderReport(report) {
  const sections = [];
  const checks = report.checks || [];
  const failed = checks.filter((check) => check.ok === false).length;
  sections.push(
    section(
      "Checks",
      el(
        "p",
        { class: ["inspector-summary", failed ? "is-error" : "is-ok"] },
        summaryText(checks.length, failed),
      ),
      el("ul", { class: "check-list" }, checks.map(checkRow)),
    ),
  );

  const certificate = report.certificate;
  if (certificate) {
    sections.push(
      section(
        "Signer's certificate",
        definitionList([
          { label: "Subject", value: certificate.subject },
          { label: "Serial", value: certificate.serial, mono: true },
          { label: "Issuer", value: certificate.issuer },
          { label: "Valid from", value: formatFullTime(certificate.notBefore) || certificate.notBefore },
          { label: "Valid until", value: formatFullTime(certificate.notAfter) || certificate.notAfter },
          { label: "Fingerprint", value: certificate.fingerprint, mono: true },
        ]),
        certificate.pem
          ? el(
              "details",
              { class: "pem" },
              el("summary", {}, "Certificate (PEM)"),
              el("pre", { class: "pem-text", tabindex: "0" }, certificate.pem),
            )
          : null,
      ),
    );
  }

  const chain = report.chain || [];
  if (chain.length) {
    sections.push(
      section(
        "Chain to the certificate authority",
        el(
          "ol",
          { class: "chain-list" },
          chain.map((link) =>
            el(
              "li",
              { class: "chain-link" },
              el("span", { class: "chain-subject" }, link.subject),
              el(
                "span",
                { class: "chain-meta" },
                `${roleText(link.role)} · serial `,
                el("code", {}, link.serial),
              ),
            ),
          ),
        ),
      ),
    );
  }

  const fields = report.fields || [];
  if (fields.length) {
    sections.push(
      section(
        "Fields",
        definitionList(fields.map((field) => ({ label: field.label, value: field.value, mono: true }))),
      ),
    );
  }
  return sections;
}

function summaryText(total, failed) {
  if (total === 0) return "No checks were recorded for this message.";
  if (failed) return `${failed} of ${total} ${total === 1 ? "check" : "checks"} failed.`;
  return "Every check that applies passed.";
}

function checkRow(check) {
  const outcome = check.ok === true ? "passed" : check.ok === false ? "failed" : "not applicable";
  const symbol = check.ok === true ? "✓" : check.ok === false ? "✗" : "–";
  return el(
    "li",
    { class: "check", "data-testid": "inspector-check", "data-ok": String(check.ok ?? null) },
    el("span", { class: "check-symbol", "aria-hidden": "true" }, symbol),
    el(
      "span",
      { class: "check-lines" },
      el("span", { class: "check-name" }, check.name, srOnly(`: ${outcome}`)),
      check.detail ? el("span", { class: "check-detail" }, check.detail) : null,
    ),
  );
}

function section(title, ...children) {
  return el(
    "section",
    { class: "inspector-section" },
    el("h3", { class: "inspector-heading" }, title),
    ...children,
  );
}

function definitionList(rows) {
  return el(
    "dl",
    { class: "field-list" },
    rows
      .filter((row) => row.value !== null && row.value !== undefined && row.value !== "")
      .map((row) =>
        el(
          "div",
          { class: "field-row" },
          el("dt", {}, row.label),
          el("dd", { class: row.mono ? "mono" : null }, String(row.value)),
        ),
      ),
  );
}

function roleText(role) {
  if (role === "root" || role === "ca") return "Certificate authority";
  if (role === "intermediate") return "Intermediate authority";
  if (role === "leaf" || role === "signer" || role === "user") return "Signer";
  return role ? String(role) : "Certificate";
}
