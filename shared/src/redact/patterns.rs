//! The patterns [`super::Redactor::apply`] replaces: e-mail addresses,
//! digit runs (phone numbers; card numbers that pass the Luhn check),
//! API-key-shaped secrets, and the length cap. Each is a hand-written scan
//! over characters, with no regex crate: the rules are few and the scans
//! cannot backtrack.

pub(super) fn truncate(text: String, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…[truncated]", &text[..cut]),
        None => text,
    }
}

fn is_email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

pub(super) fn redact_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            // Local part: back up over what was already copied.
            let local_len = out.chars().rev().take_while(|c| is_email_char(*c)).count();
            let mut end = i + 1;
            while end < chars.len()
                && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '.' | '-'))
            {
                end += 1;
            }
            let domain: String = chars[i + 1..end].iter().collect();
            let domain = domain.trim_end_matches('.');
            if local_len > 0 && domain.contains('.') && !domain.starts_with('.') {
                let keep = out.chars().count() - local_len;
                out = out.chars().take(keep).collect();
                out.push_str("[EMAIL]");
                i += 1 + domain.chars().count();
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Replace runs of `min..=max` digits (allowing single separators ` -.()`
/// and a leading `+`) that satisfy `accept` with `placeholder`.
pub(super) fn redact_digit_runs(
    text: &str,
    min: usize,
    max: usize,
    placeholder: &str,
    accept: impl Fn(&[u32]) -> bool,
) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = (chars[i].is_ascii_digit()
            || (chars[i] == '+' || chars[i] == '(')
                && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            && (i == 0 || !chars[i - 1].is_ascii_alphanumeric());
        if starts {
            let mut digits = Vec::new();
            let mut j = i;
            let mut last_digit_end = i;
            while j < chars.len() {
                let c = chars[j];
                if let Some(d) = c.to_digit(10) {
                    digits.push(d);
                    j += 1;
                    last_digit_end = j;
                } else if is_separator(c) {
                    // Up to two separators in a row (`) `, ` (`), then a digit.
                    let run = chars[j..].iter().take_while(|c| is_separator(**c)).count();
                    if run <= 2 && chars.get(j + run).is_some_and(char::is_ascii_digit) {
                        j += run;
                    } else {
                        break;
                    }
                } else {
                    break;
                }
            }
            let bounded =
                last_digit_end == chars.len() || !chars[last_digit_end].is_ascii_alphanumeric();
            if bounded && (min..=max).contains(&digits.len()) && accept(&digits) {
                out.push_str(placeholder);
                i = last_digit_end;
                continue;
            }
            // Not a match: copy the run as is (so a long id is not re-scanned
            // from its middle as a shorter number).
            out.extend(&chars[i..last_digit_end.max(i + 1)]);
            i = last_digit_end.max(i + 1);
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '+')
}

/// The Luhn checksum of payment card numbers.
pub(super) fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 != 0 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub(super) fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut pending_bearer = false;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        let core = word.trim_matches(|c: char| {
            matches!(
                c,
                '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | ':'
            ) || c == '.'
        });
        if !core.is_empty() && (pending_bearer || looks_like_secret(core)) {
            out.push_str(&word.replacen(core, "[SECRET]", 1));
            pending_bearer = false;
        } else {
            out.push_str(word);
            pending_bearer = core.eq_ignore_ascii_case("bearer");
        }
        rest = &rest[end..];
    }
    out
}

fn looks_like_secret(token: &str) -> bool {
    let prefixed = [
        "sk-",
        "sk_",
        "pk_live_",
        "rk_live_",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "xoxb-",
        "xoxp-",
        "xoxa-",
        "AKIA",
        "ASIA",
        "AIza",
    ]
    .iter()
    .any(|p| token.starts_with(p) && token.len() >= p.len() + 8);
    let long_mixed = token.len() >= 32
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '+' | '='))
        && token.chars().any(|c| c.is_ascii_digit())
        && token.chars().any(|c| c.is_ascii_alphabetic());
    prefixed || long_mixed
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;

    fn r(text: &str) -> String {
        Redactor::default().apply(text)
    }

    #[test]
    fn emails() {
        assert_eq!(
            r("mail alice.smith+rag@example.co.uk now"),
            "mail [EMAIL] now"
        );
        assert_eq!(r("<bob@corp.io>, carol@x.org."), "<[EMAIL]>, [EMAIL].");
        assert_eq!(
            r("an @ sign and user@localhost stay"),
            "an @ sign and user@localhost stay"
        );
    }

    #[test]
    fn cards_need_a_valid_luhn_checksum() {
        assert_eq!(r("card 4111 1111 1111 1111 ok"), "card [CARD] ok");
        assert_eq!(r("card 4111-1111-1111-1111"), "card [CARD]");
        assert_eq!(r("5500005555555559"), "[CARD]");
        // 16 digits failing Luhn: not a card (and too long for a phone).
        assert_eq!(r("order 4111111111111112"), "order 4111111111111112");
    }

    #[test]
    fn phones() {
        assert_eq!(r("call +1 (415) 555-0132 today"), "call [PHONE] today");
        assert_eq!(r("call 020 7946 0958"), "call [PHONE]");
        // Short numbers and numbers inside words are not phones.
        assert_eq!(
            r("top_k 20 and 3.14 and v1234567x"),
            "top_k 20 and 3.14 and v1234567x"
        );
    }

    #[test]
    fn secrets() {
        assert_eq!(r("key sk-proj-abcdef1234567890 here"), "key [SECRET] here");
        assert_eq!(
            r("Authorization: Bearer abc.def.ghi"),
            "Authorization: Bearer [SECRET]"
        );
        assert_eq!(r("aws AKIAIOSFODNN7EXAMPLE"), "aws [SECRET]");
        assert_eq!(
            r("\"ghp_0123456789abcdefghijABCDEFGHIJ012345\""),
            "\"[SECRET]\""
        );
        assert_eq!(r("token=a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7"), "[SECRET]");
        assert_eq!(
            r("traceparent and tracestate are words"),
            "traceparent and tracestate are words"
        );
    }

    #[test]
    fn the_cap_keeps_json_valid() {
        let capped = Redactor {
            max_chars: 10,
            ..Redactor::default()
        }
        .apply("é\"quoted\" text that is long");
        assert_eq!(capped, "é\"quoted\" …[truncated]");
        let json = serde_json::json!({"content": capped}).to_string();
        assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    }

    #[test]
    fn adversarial_inputs_do_not_panic() {
        for text in [
            "@",
            "@@..@",
            "+",
            "(",
            "+(",
            "1-",
            "-1",
            "é@é.é",
            "a@b.",
            "4111 ",
            "Bearer",
            "bearer ",
            "\u{0}sk-",
            "١٢٣٤٥٦٧٨٩٠١٢٣",
        ] {
            let _ = r(text);
        }
        let long = "x@y.z ".repeat(10_000);
        assert!(r(&long).starts_with("[EMAIL] [EMAIL]"));
    }

    #[test]
    fn kinds_can_be_switched_off() {
        let only_cards = Redactor {
            email: false,
            phone: false,
            secret: false,
            ..Redactor::default()
        };
        assert_eq!(only_cards.apply("a@b.io 4111111111111111"), "a@b.io [CARD]");
    }
}
