//! Which browser origins may use jetchat (`CORS_ALLOWED_ORIGINS`): parsed once at start-up,
//! then asked about each request's `Origin` header by the CORS layer of REST and by the
//! WebSocket upgrade. Pure: no HTTP types beyond the header's bytes.

/// Longest `Origin` header looked at; longer ones are refused unparsed (a real origin is a
/// scheme, a host of at most 253 bytes and a port).
pub const MAX_ORIGIN_BYTES: usize = 512;

/// The origins allowed to call jetchat from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// None (the default): browsers on other origins get no CORS headers and their sockets
    /// are refused.
    #[default]
    None,
    /// `*`: every origin. Safe only because jetchat never allows credentials (cookies):
    /// a page still needs a token to do anything.
    Any,
    /// These origins, each in its serialised form (`https://chat.example.com`, lower case, no
    /// default port, no trailing slash).
    List(Vec<String>),
}

/// Why a `CORS_ALLOWED_ORIGINS` entry is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("{0:?} is not a URL: {1}")]
    NotAUrl(String, String),
    #[error("{0:?}: only http and https origins can be listed")]
    Scheme(String),
    #[error("{0:?}: an origin is scheme://host[:port], without a path, query or credentials")]
    NotAnOrigin(String),
    #[error(
        "\"null\" cannot be listed: it is the origin of sandboxed frames and local files, \
         which any page can produce"
    )]
    Null,
    #[error("\"*\" allows every origin; it cannot be combined with a list")]
    WildcardInList,
}

impl AllowedOrigins {
    /// Parses the setting: empty (none), `*`, or a comma-separated list of origins.
    pub fn parse(raw: &str) -> Result<Self, OriginError> {
        let entries: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(AllowedOrigins::None);
        }
        if entries.contains(&"*") {
            return match entries.len() {
                1 => Ok(AllowedOrigins::Any),
                _ => Err(OriginError::WildcardInList),
            };
        }
        let mut list = Vec::with_capacity(entries.len());
        for entry in entries {
            let origin = serialise(entry)?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        Ok(AllowedOrigins::List(list))
    }

    /// Whether any origin at all is allowed (the CORS layer exists only then).
    pub fn is_none(&self) -> bool {
        matches!(self, AllowedOrigins::None)
    }

    /// Whether a request with this `Origin` header may go on. The header is read as a
    /// browser would write it, leniently about case and a trailing slash; anything that is
    /// not an http(s) origin (garbage, `null`, too long) is refused.
    pub fn allows(&self, header: &[u8]) -> bool {
        match self {
            AllowedOrigins::None => false,
            AllowedOrigins::Any => origin_of_header(header).is_some(),
            AllowedOrigins::List(list) => {
                origin_of_header(header).is_some_and(|origin| list.contains(&origin))
            }
        }
    }
}

/// The serialised origin of an `Origin` header, or `None` when it is not one.
fn origin_of_header(header: &[u8]) -> Option<String> {
    if header.len() > MAX_ORIGIN_BYTES {
        return None;
    }
    let text = std::str::from_utf8(header).ok()?;
    serialise(text.trim()).ok()
}

/// `https://Chat.Example.com:443/` → `https://chat.example.com`: what a browser sends as
/// `Origin` for pages of that site.
fn serialise(entry: &str) -> Result<String, OriginError> {
    if entry.eq_ignore_ascii_case("null") {
        return Err(OriginError::Null);
    }
    let url =
        url::Url::parse(entry).map_err(|e| OriginError::NotAUrl(entry.into(), e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OriginError::Scheme(entry.into()));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(OriginError::NotAnOrigin(entry.into()));
    }
    Ok(url.origin().ascii_serialization())
}

/// Whether `origin` (an `Origin` header) names the host the request was sent to (its `Host`
/// header): a page jetchat served itself. Compared by authority, as the scheme is not known
/// behind a TLS-terminating proxy.
pub fn is_same_origin(origin: &[u8], host: &[u8]) -> bool {
    let Some(origin) = origin_of_header(origin) else {
        return false;
    };
    let Ok(url) = url::Url::parse(&origin) else {
        return false;
    };
    let Some(origin_host) = url.host_str() else {
        return false;
    };
    let authority = match url.port() {
        Some(port) => format!("{origin_host}:{port}"),
        None => origin_host.to_owned(),
    };
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let host = host.trim();
    // `Host: example.com:80` for an `http://example.com` origin is the same site.
    let default_port = match url.scheme() {
        "https" => ":443",
        _ => ":80",
    };
    let host = host.strip_suffix(default_port).unwrap_or(host);
    host.eq_ignore_ascii_case(&authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &str) -> AllowedOrigins {
        AllowedOrigins::parse(raw).unwrap()
    }

    #[test]
    fn the_setting_is_none_any_or_a_normalised_list() {
        assert_eq!(list(""), AllowedOrigins::None);
        assert_eq!(list(" , "), AllowedOrigins::None);
        assert_eq!(list("*"), AllowedOrigins::Any);
        assert_eq!(
            list("HTTPS://Chat.Example.com:443/, http://localhost:5173,http://localhost:5173"),
            AllowedOrigins::List(vec![
                "https://chat.example.com".into(),
                "http://localhost:5173".into()
            ])
        );
        assert_eq!(
            list("http://[::1]:8080"),
            AllowedOrigins::List(vec!["http://[::1]:8080".into()])
        );
    }

    #[test]
    fn entries_that_are_no_origin_are_refused() {
        let err = |raw: &str| AllowedOrigins::parse(raw).unwrap_err();
        assert!(matches!(err("chat.example.com"), OriginError::NotAUrl(..)));
        assert!(matches!(err("https://"), OriginError::NotAUrl(..)));
        assert!(matches!(err("ftp://example.com"), OriginError::Scheme(_)));
        assert!(matches!(err("file:///tmp"), OriginError::Scheme(_)));
        assert!(matches!(
            err("https://example.com/app"),
            OriginError::NotAnOrigin(_)
        ));
        assert!(matches!(
            err("https://example.com/?a=1"),
            OriginError::NotAnOrigin(_)
        ));
        assert!(matches!(
            err("https://u:p@example.com"),
            OriginError::NotAnOrigin(_)
        ));
        assert_eq!(err("null"), OriginError::Null);
        assert_eq!(err("*, https://example.com"), OriginError::WildcardInList);
    }

    #[test]
    fn headers_match_leniently_and_garbage_never() {
        let allowed = list("https://chat.example.com,http://localhost:5173");
        assert!(allowed.allows(b"https://chat.example.com"));
        assert!(allowed.allows(b"HTTPS://CHAT.EXAMPLE.COM"));
        assert!(allowed.allows(b"https://chat.example.com/"));
        assert!(allowed.allows(b"https://chat.example.com:443"));
        assert!(allowed.allows(b"http://localhost:5173"));
        assert!(
            !allowed.allows(b"http://chat.example.com"),
            "another scheme"
        );
        assert!(!allowed.allows(b"https://chat.example.com:8443"));
        assert!(!allowed.allows(b"https://chat.example.com.evil.test"));
        assert!(!allowed.allows(b"https://evil.test/?https://chat.example.com"));
        assert!(!allowed.allows(b"null"));
        assert!(!allowed.allows(b""));
        assert!(!allowed.allows(b"\xff\xfe"));
        assert!(!allowed.allows(b"not an origin"));
        let long = format!("https://{}.example.com", "a".repeat(MAX_ORIGIN_BYTES));
        assert!(!allowed.allows(long.as_bytes()));
        assert!(AllowedOrigins::Any.allows(b"https://anything.test"));
        assert!(!AllowedOrigins::Any.allows(b"null"));
        assert!(!AllowedOrigins::None.allows(b"https://chat.example.com"));
    }

    #[test]
    fn same_origin_compares_the_authority_with_host() {
        assert!(is_same_origin(b"http://127.0.0.1:8000", b"127.0.0.1:8000"));
        assert!(is_same_origin(
            b"https://Chat.Example.com",
            b"chat.example.com"
        ));
        assert!(is_same_origin(
            b"https://chat.example.com",
            b"chat.example.com:443"
        ));
        assert!(!is_same_origin(b"http://127.0.0.1:8001", b"127.0.0.1:8000"));
        assert!(!is_same_origin(b"https://evil.test", b"chat.example.com"));
        assert!(!is_same_origin(b"null", b"chat.example.com"));
        assert!(!is_same_origin(b"https://chat.example.com", b""));
    }
}
