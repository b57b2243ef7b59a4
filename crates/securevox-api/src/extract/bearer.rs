//! The bearer token of `Authorization: Bearer <token>` (RFC 6750). The scheme name is
//! case-insensitive (RFC 9110 §11.1), so `bearer`, `BEARER` … work as well.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;

/// The token of the request's bearer credentials, trimmed; `None` without one, with another
/// scheme, with an empty or space-containing token, or when several `Authorization` headers make
/// it ambiguous which one counts.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && !token.contains([' ', '\t'])).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token(values: &[&'static str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_static(v));
        }
        bearer_token(&headers).map(str::to_owned)
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR abc"] {
            assert_eq!(token(&[value]).as_deref(), Some("abc"), "{value:?}");
        }
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(token(&["  Bearer   abc.def-ghi  "]).as_deref(), Some("abc.def-ghi"));
        assert_eq!(token(&["Bearer\tabc"]).as_deref(), Some("abc"));
    }

    #[test]
    fn anything_else_is_no_bearer_token() {
        assert_eq!(token(&[]), None);
        for value in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Bearerabc",
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Token abc",
            "Bearer abc def",
            "xBearer abc",
        ] {
            assert_eq!(token(&[value]), None, "{value:?}");
        }
    }

    #[test]
    fn several_authorization_headers_are_refused() {
        assert_eq!(token(&["Bearer abc", "Bearer def"]), None);
    }

    #[test]
    fn a_non_ascii_header_is_no_token() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(b"Bearer \xff").unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
