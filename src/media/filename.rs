//! The client's file name, made safe to keep as metadata and to show in a
//! `Content-Disposition` header. It never becomes a path: blobs are named by their hash.

/// Longest name kept, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;

/// Longest extension kept when a long name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// The last path component of `raw`, without control characters (NUL included), bidirectional
/// overrides or invisible characters, trimmed of dots and spaces, at most
/// [`MAX_FILENAME_BYTES`] (keeping the extension); `file` when nothing is left.
pub fn sanitize(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or_default();
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !hidden_or_control(*c)).collect();
    let trimmed = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    let name = shorten(trimmed, MAX_FILENAME_BYTES);
    if name.is_empty() {
        "file".to_owned()
    } else {
        name
    }
}

/// Characters that hide or reorder what a name shows.
fn hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'                  // Arabic letter mark
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width characters, LRM, RLM
            | '\u{2028}'..='\u{202E}'   // line/paragraph separators, embeddings, overrides
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, isolates
            | '\u{FEFF}'                // byte order mark
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotations
        )
}

/// `name` cut to `max` bytes on a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() <= MAX_EXTENSION_BYTES)
        .unwrap_or_default();
    let stem = &name[..name.len() - extension.len()];
    let mut cut = max - extension.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{extension}", stem[..cut].trim_end())
}

/// `Content-Disposition: inline` naming the file: an ASCII fallback and the UTF-8 name
/// (RFC 6266 / RFC 8187).
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("inline; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_names() {
        assert_eq!(sanitize(Some("../../etc/passwd")), "passwd");
        assert_eq!(sanitize(Some("..\\..\\windows\\system.ini")), "system.ini");
        assert_eq!(sanitize(Some("/")), "file");
        assert_eq!(sanitize(Some("..")), "file");
        assert_eq!(sanitize(Some(".hidden")), "hidden");
        assert_eq!(sanitize(None), "file");
        assert_eq!(sanitize(Some("  voice note.ogg  ")), "voice note.ogg");
    }

    #[test]
    fn control_and_invisible_characters_go() {
        assert_eq!(sanitize(Some("a\0b.mp3")), "ab.mp3");
        assert_eq!(sanitize(Some("line\nbreak.ogg")), "linebreak.ogg");
        // With U+202E (right-to-left override) "evil<RLO>gpj.exe" shows as "evilexe.jpg".
        assert_eq!(sanitize(Some("evil\u{202E}gpj.exe")), "evilgpj.exe");
        assert_eq!(
            sanitize(Some("zero\u{200B}width\u{2066}.png")),
            "zerowidth.png"
        );
        assert_eq!(sanitize(Some("голос 🎤.ogg")), "голос 🎤.ogg");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.mp4", "a".repeat(1000));
        let name = sanitize(Some(&long));
        assert_eq!(name.len(), MAX_FILENAME_BYTES);
        assert!(name.ends_with(".mp4"));
        let wide = format!("{}.ogg", "я".repeat(300));
        let name = sanitize(Some(&wide));
        assert!(name.len() <= MAX_FILENAME_BYTES && name.ends_with(".ogg"));
        let no_ext = "b".repeat(300);
        assert_eq!(sanitize(Some(&no_ext)).len(), MAX_FILENAME_BYTES);
    }

    #[test]
    fn disposition_quotes_safely() {
        assert_eq!(
            content_disposition("a \"b\".mp3"),
            "inline; filename=\"a _b_.mp3\"; filename*=UTF-8''a%20%22b%22%2Emp3"
        );
        assert_eq!(
            content_disposition("я.ogg"),
            "inline; filename=\"_.ogg\"; filename*=UTF-8''%D1%8F%2Eogg"
        );
    }
}
