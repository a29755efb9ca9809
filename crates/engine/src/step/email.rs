//! `email: {url, from, timeout}` with `to`, `cc`, `bcc`, `subject`, `body`
//! and `html`: an e-mail sent over SMTP (`lettre`), the step succeeding once
//! the server accepted it for delivery.
//!
//! The server is an SMTP URL as `lettre` reads it: `smtps://` for TLS from
//! the first byte (port 465), `smtp://HOST:587?tls=required` for STARTTLS,
//! `smtp://HOST:25` for neither, each with `USER:PASSWORD@` to sign in.
//! A password never travels unencrypted: without TLS, credentials are
//! refused unless the server is on this machine (loopback).
//!
//! The recipients, the subject and the bodies are jq; `body` is the plain
//! text, `html` (when given) an HTML alternative. The message carries a
//! `Message-ID` derived like a call's idempotency key (the run, the step,
//! the item), so a message sent again after a crash or a retry has the
//! same id, by which mail systems and readers recognise the copy.
//!
//! A server that cannot be reached, answers too late or refuses for now
//! (an SMTP 4xx) fails the step as transient: the run is retried on its
//! schedule. A refusal for good (5xx, such as an unknown recipient) or an
//! address that is not one fails it for good.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use patchbay_config::{HumanDuration, Located};
use patchbay_expr::Expr;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::{StepError, type_name};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `email`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The server and the sender.
    email: Located<Server>,
    /// jq: the recipient, or an array of them (`"Name <a@example.com>"`
    /// or `a@example.com`).
    to: Located<String>,
    /// jq: more recipients, shown to all.
    #[serde(default)]
    cc: Option<Located<String>>,
    /// jq: more recipients, hidden from the others.
    #[serde(default)]
    bcc: Option<Located<String>>,
    /// jq: the subject.
    subject: Located<String>,
    /// jq: the plain-text body.
    body: Located<String>,
    /// jq: an HTML alternative to the body.
    #[serde(default)]
    html: Option<Located<String>>,
}

/// Where the message goes from.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Server {
    /// The SMTP server: `smtps://USER:PASSWORD@HOST` (TLS, port 465),
    /// `smtp://USER:PASSWORD@HOST:587?tls=required` (STARTTLS) or
    /// `smtp://HOST:25` (neither); `${env:…}` and `${secret:…}` are
    /// resolved.
    url: Located<String>,
    /// The sender: `"Name <address>"` or an address.
    from: Located<String>,
    /// How long the server may take to connect and to answer each command
    /// (default 30s).
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

pub(crate) struct Email {
    /// `None` when the plan never runs (no environment to resolve it).
    url: Option<String>,
    /// The server's host, which errors name (never the URL: it holds a
    /// password).
    host: String,
    from: Mailbox,
    timeout: Duration,
    to: Expr,
    cc: Option<Expr>,
    bcc: Option<Expr>,
    subject: Expr,
    body: Expr,
    html: Option<Expr>,
    /// Built at the first message: a pool of connections the step keeps.
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl std::fmt::Debug for Email {
    // The URL holds a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("host", &self.host)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// The host of an SMTP URL `lettre` can use, with whether a password in it
/// would travel unencrypted to another machine; or why it cannot be used.
fn check_url(url: &str) -> Result<String, String> {
    const EXPECTED: &str = "an SMTP server address (`smtps://USER:PASSWORD@HOST`, \
                            `smtp://USER:PASSWORD@HOST:587?tls=required` or `smtp://HOST:25`)";
    let parsed = url::Url::parse(url).map_err(|_| format!("is not {EXPECTED}"))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    if !matches!(parsed.scheme(), "smtp" | "smtps") || host.is_empty() {
        return Err(format!("is not {EXPECTED}"));
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| format!("is not {EXPECTED}: {e}"))?;
    let encrypted = parsed.scheme() == "smtps"
        || parsed
            .query_pairs()
            .any(|(key, value)| key == "tls" && value == "required");
    // `smtp` is not a scheme the URL standard knows, so its host is only
    // text: an address is read from it here.
    let loopback = match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost",
    };
    if parsed.password().is_some() && !encrypted && !loopback {
        return Err(
            "would send its password unencrypted: use `smtps://` or add `?tls=required` \
             (STARTTLS)"
                .into(),
        );
    }
    Ok(host)
}

impl Kind for Email {
    const KEY: &'static str = "email";
    const FANS_OUT: bool = true;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let server = config.email.value;
        let from = server
            .from
            .value
            .parse::<Mailbox>()
            .map_err(|e| {
                compiler.error(
                    &server.from,
                    format!(
                        "email.from `{}` is not an e-mail address: {e}",
                        server.from.value
                    ),
                )
            })
            .ok();
        let url = match compiler.env() {
            None => Ok(None),
            Some(env) => patchbay_config::interpolate(&server.url.value, env)
                .map_err(|e| format!("email.url: {e}"))
                .and_then(|url| {
                    check_url(&url)
                        .map(|host| Some((url, host)))
                        .map_err(|why| format!("email.url {why}"))
                }),
        };
        let url = url
            .map_err(|message| compiler.error(&server.url, message))
            .ok();
        let to = compiler.expr("to", &config.to);
        let cc = compiler.optional("cc", config.cc.as_ref());
        let bcc = compiler.optional("bcc", config.bcc.as_ref());
        let subject = compiler.expr("subject", &config.subject);
        let body = compiler.expr("body", &config.body);
        let html = compiler.optional("html", config.html.as_ref());
        let (url, host) = match url? {
            Some((url, host)) => (Some(url), host),
            None => (None, String::new()),
        };
        Some(Email {
            url,
            host,
            from: from?,
            timeout: server.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0),
            to: to?,
            cc: cc?,
            bcc: bcc?,
            subject: subject?,
            body: body?,
            html: html?,
            transport: OnceLock::new(),
        })
    }
}

impl Email {
    fn failure(&self, message: String, transient: bool) -> StepError {
        StepError::Mail {
            server: self.host.clone(),
            message,
            transient,
        }
    }

    /// The step's connection pool, built at its first message.
    fn transport(&self) -> Result<&AsyncSmtpTransport<Tokio1Executor>, StepError> {
        let Some(url) = &self.url else {
            return Err(self.failure("the plan has no server address".into(), false));
        };
        if let Some(transport) = self.transport.get() {
            return Ok(transport);
        }
        // Checked when the plan was built; the error names no URL.
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| self.failure(format!("unusable server address: {e}"), false))?;
        Ok(self
            .transport
            .get_or_init(|| builder.timeout(Some(self.timeout)).build()))
    }

    /// The addresses an expression gives: one string, or an array of them.
    async fn mailboxes(
        &self,
        cx: &StepContext<'_>,
        place: &str,
        expr: &Expr,
    ) -> Result<Vec<Mailbox>, StepError> {
        let value = cx.eval(place, expr).await?;
        let texts = match value {
            Value::Null => Vec::new(),
            Value::String(text) => vec![text],
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    other => Err(StepError::InvalidValue {
                        place: place.into(),
                        expected: "an address or an array of addresses",
                        found: type_name(&other),
                    }),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(StepError::InvalidValue {
                    place: place.into(),
                    expected: "an address or an array of addresses",
                    found: type_name(&other),
                });
            }
        };
        texts
            .iter()
            .map(|text| {
                text.parse::<Mailbox>().map_err(|_| {
                    self.failure(format!("{place}: `{text}` is not an e-mail address"), false)
                })
            })
            .collect()
    }

    async fn text(
        &self,
        cx: &StepContext<'_>,
        place: &str,
        expr: &Expr,
    ) -> Result<String, StepError> {
        match cx.eval(place, expr).await? {
            Value::String(text) => Ok(text),
            other => Err(StepError::InvalidValue {
                place: place.into(),
                expected: "a string",
                found: type_name(&other),
            }),
        }
    }

    /// The `Message-ID` of this step's message: the same on every attempt.
    fn message_id(&self, cx: &StepContext<'_>) -> String {
        let key: String = cx
            .default_idempotency_key()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        format!("<{key}@{}>", self.from.email.domain())
    }
}

#[async_trait]
impl Step for Email {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let to = self.mailboxes(cx, "to", &self.to).await?;
        let cc = match &self.cc {
            Some(expr) => self.mailboxes(cx, "cc", expr).await?,
            None => Vec::new(),
        };
        let bcc = match &self.bcc {
            Some(expr) => self.mailboxes(cx, "bcc", expr).await?,
            None => Vec::new(),
        };
        if to.is_empty() && cc.is_empty() && bcc.is_empty() {
            return Err(self.failure(
                "no recipient (`to`, `cc` and `bcc` are empty)".into(),
                false,
            ));
        }
        let subject = self.text(cx, "subject", &self.subject).await?;
        let body = self.text(cx, "body", &self.body).await?;
        let html = match &self.html {
            Some(expr) => Some(self.text(cx, "html", expr).await?),
            None => None,
        };
        let message_id = self.message_id(cx);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject.clone())
            .message_id(Some(message_id.clone()));
        for mailbox in &to {
            builder = builder.to(mailbox.clone());
        }
        for mailbox in &cc {
            builder = builder.cc(mailbox.clone());
        }
        for mailbox in &bcc {
            builder = builder.bcc(mailbox.clone());
        }
        let message = match &html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                body.clone(),
                html.clone(),
            )),
            None => builder.header(ContentType::TEXT_PLAIN).body(body.clone()),
        }
        .map_err(|e| self.failure(format!("cannot build the message: {e}"), false))?;
        let names = |list: &[Mailbox]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        let request = json!({
            "server": self.host,
            "message_id": message_id,
            "from": self.from.to_string(),
            "to": names(&to),
            "cc": names(&cc),
            "bcc": names(&bcc),
            "subject": subject,
        });
        let reply = self.transport()?.send(message).await.map_err(|e| {
            // 5xx and what the client itself refused do not change on a
            // retry; a 4xx, a timeout, a lost or refused connection may.
            let transient = !(e.is_permanent() || e.is_client());
            self.failure(e.to_string(), transient)
        })?;
        Ok(Performed {
            output: json!({
                "message_id": message_id,
                "recipients": to.len() + cc.len() + bcc.len(),
                "reply": format!("{} {}", reply.code(), reply.message().collect::<Vec<_>>().join(" ")),
            }),
            request: Some(request),
            reply: None,
        })
    }

    fn describe(&self) -> Description {
        Description {
            path: Some(self.host.clone()),
            expression: Some(self.subject.source().into()),
            ..Description::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    fn report(step: &str) -> String {
        crate::test_support::problems(
            "notify",
            &format!("trigger: {{ manual: {{}} }}\nsteps:\n{step}"),
        )
    }

    #[test]
    fn a_valid_step_compiles() {
        let found = report(
            "  - email: { url: 'smtps://me:secret@mail.example.com', from: 'Shop <shop@example.com>' }\n    \
             to: .customer.email\n    subject: '\"Order \\(.id)\"'\n    body: '\"Thanks\"'\n",
        );
        assert_eq!(found, "");
    }

    #[test]
    fn every_problem_is_reported_at_its_line_without_the_password() {
        let found = report(
            "  - email:\n      url: 'smtp://me:hunter2@mail.example.com:25'\n      from: 'not an address'\n    \
             to: '.to'\n    subject: '.subject |'\n    body: '\"x\"'\n",
        );
        for expected in [
            "flows/notify.yaml:4:",
            "email.url would send its password unencrypted",
            "flows/notify.yaml:5:",
            "email.from `not an address` is not an e-mail address",
            "flows/notify.yaml:7:",
            "invalid jq in `subject`",
        ] {
            assert!(
                found.contains(expected),
                "{expected:?} missing from:\n{found}"
            );
        }
        assert!(!found.contains("hunter2"), "{found}");
    }

    #[test]
    fn urls_are_checked_for_scheme_and_encryption() {
        assert_eq!(
            check_url("smtps://u:p@mail.example.com").unwrap(),
            "mail.example.com"
        );
        assert!(check_url("smtp://u:p@mail.example.com:587?tls=required").is_ok());
        assert!(check_url("smtp://mail.example.com:25").is_ok());
        assert!(check_url("smtp://u:p@127.0.0.1:2525").is_ok());
        assert!(check_url("smtp://u:p@[::1]:2525").is_ok());
        assert!(check_url("smtp://u:p@localhost:2525").is_ok());
        assert!(check_url("smtp://u:p@127.0.0.1.example.com:2525").is_err());
        assert!(check_url("smtp://u:p@mail.example.com:587").is_err());
        assert!(check_url("http://mail.example.com").is_err());
        assert!(check_url("smtp://mail.example.com?tls=sometimes").is_err());
    }
}
