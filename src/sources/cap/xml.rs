//! A small element tree over quick-xml's event reader.
//!
//! CAP messages and index feeds are a few kilobytes, so the decoders read the whole
//! document into a tree first and then look children up by *local* name. That is what
//! makes them tolerant of namespaces: `<alert xmlns="…cap:1.2">`, `<cap:alert>` and a
//! bare `<alert>` read the same, and a `<ds:Signature>` is a child nobody asks for.
//! The tree is strict about well-formedness: a truncated document or a mismatched end
//! tag is an error, never a shorter tree.
//!
//! Encodings (XML 1.0 §4.3.3 and appendix F): a byte order mark decides (UTF-8,
//! UTF-16 LE or BE); else the XML declaration's `encoding` does (ISO-8859-1,
//! windows-1251, KOI8-U, … — every label the WHATWG Encoding Standard knows, through
//! quick-xml's `encoding` feature, i.e. `encoding_rs`); else the body must be UTF-8.
//! The whole body is transcoded to UTF-8 before it is parsed, strictly: a byte the
//! encoding does not define is an error, never a replacement character. WHATWG reads
//! the label `ISO-8859-1` as windows-1252, which is what senders who write it mean.
//!
//! Entities: only XML's five and character references are read. A document's own
//! entities (`<!DOCTYPE … [<!ENTITY …>]>`) are never expanded, so an external entity
//! (XXE) can fetch nothing and a nested one cannot blow up: a message that uses one is
//! refused.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::encoding::{DetectedEncoding, detect_encoding};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Deeper nesting than any CAP or feed document has; guards the stack against a
/// pathological body.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Element {
    /// The local name, without a namespace prefix.
    pub name: String,
    /// Attributes by local name.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The element's own character data (text, CDATA, entities), untrimmed.
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The element's text, trimmed.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// A child's trimmed text, or `None` when the child is absent or empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(Element::text).filter(|t| !t.is_empty())
    }

    /// How many descendants (this element excluded) have this name.
    pub fn find_all(&self, name: &str) -> usize {
        self.children.iter().map(|c| usize::from(c.name == name) + c.find_all(name)).sum()
    }

    /// The first descendant (depth first, this element excluded) with this name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| if c.name == name { Some(c) } else { c.find(name) })
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(xml: &[u8]) -> Result<Element, String> {
    let text = transcode(xml)?;
    parse_str(&text)
}

/// The body as UTF-8 text, read in the encoding its byte order mark or its XML
/// declaration names (see the module docs).
pub(crate) fn transcode(xml: &[u8]) -> Result<Cow<'_, str>, String> {
    match detect_encoding(xml) {
        Some(
            found @ (DetectedEncoding::Utf16LeBom
            | DetectedEncoding::Utf16BeBom
            | DetectedEncoding::Utf16LeLike
            | DetectedEncoding::Utf16BeLike),
        ) => {
            let encoding = found.encoding();
            return quick_xml::encoding::decode(&xml[found.bom_len()..], encoding)
                .map_err(|_| format!("the body starts as {} but is not valid {0}", encoding.name()));
        }
        Some(utf8 @ DetectedEncoding::Utf8Bom) => return utf8_text(&xml[utf8.bom_len()..], "its byte order mark"),
        _ => {}
    }
    let Some(decl) = declaration(xml)? else { return undeclared(xml) };
    let mut reader = Reader::from_str(decl);
    let Ok(Event::Decl(decl)) = reader.read_event() else {
        return Err("the XML declaration `<?xml …?>` does not read".to_owned());
    };
    let label = match decl.encoding() {
        None => return undeclared(xml),
        Some(Ok(label)) => label.trim().to_owned(),
        Some(Err(e)) => return Err(format!("the XML declaration's encoding does not read: {e}")),
    };
    let Some(encoding) = decl.encoder() else {
        return Err(format!("the XML declaration names encoding `{label}`, which sirena cannot read"));
    };
    match encoding.name() {
        "UTF-8" => utf8_text(xml, "its XML declaration says"),
        // UTF-16 declared on a body that reads as ASCII: a server transcoded the
        // document and left the declaration as it was. The bytes decide.
        "UTF-16LE" | "UTF-16BE" => utf8_text(xml, "its bytes show"),
        name => quick_xml::encoding::decode(xml, encoding)
            .map_err(|_| format!("the body is not valid {name}, the encoding its XML declaration names (`{label}`)")),
    }
}

/// A body that names no encoding is UTF-8 (XML 1.0 §4.3.3).
fn undeclared(xml: &[u8]) -> Result<Cow<'_, str>, String> {
    std::str::from_utf8(xml).map(Cow::Borrowed).map_err(|e| {
        format!(
            "the body is not UTF-8 ({}) and names no other encoding; a sender writing ISO-8859-1 or \
             windows-1251 must say so: <?xml version=\"1.0\" encoding=\"windows-1251\"?>",
            bad_byte(xml, e.valid_up_to())
        )
    })
}

fn utf8_text<'a>(xml: &'a [u8], why: &str) -> Result<Cow<'a, str>, String> {
    std::str::from_utf8(xml)
        .map(Cow::Borrowed)
        .map_err(|e| format!("the body is not valid UTF-8, as {why} ({})", bad_byte(xml, e.valid_up_to())))
}

fn bad_byte(xml: &[u8], at: usize) -> String {
    match xml.get(at) {
        Some(b) => format!("byte 0x{b:02X} at offset {at}"),
        None => format!("a character cut short at the end, offset {at}"),
    }
}

/// The XML declaration at the very start of an ASCII-compatible body, if it has one.
fn declaration(xml: &[u8]) -> Result<Option<&str>, String> {
    if !xml.starts_with(b"<?xml") || xml.get(5).is_some_and(|b| !b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let Some(end) = xml.windows(2).take(512).position(|w| w == b"?>") else {
        return Err("the XML declaration `<?xml …` is never closed with `?>`".to_owned());
    };
    match std::str::from_utf8(&xml[..end + 2]) {
        Ok(decl) if decl.is_ascii() => Ok(Some(decl)),
        _ => Err("the XML declaration `<?xml …?>` holds bytes that are not ASCII".to_owned()),
    }
}

/// Parses a UTF-8 document into its root element.
pub(crate) fn parse_str(xml: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            format!("not well-formed XML at {}: {e}", line_col(xml, at))
        })?;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                stack.push(element(&start)?);
            }
            Event::Empty(start) => attach(&mut stack, &mut root, element(&start)?)?,
            Event::End(_) => {
                // quick-xml checks that the end tag matches the open one.
                let el = stack.pop().ok_or("an end tag without a start tag")?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => push_text(&mut stack, &c.into_inner())?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.to_owned(),
                        None => {
                            return Err(format!(
                                "the document uses the entity `&{};`, which is not one of XML's own; sirena \
                                 never expands entities a document declares (they can read files or URLs)",
                                &*r
                            ));
                        }
                    },
                    Err(e) => return Err(format!("bad character reference `&{};`: {e}", &*r)),
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("truncated: <{}> is never closed", open.name));
    }
    root.ok_or_else(|| "no root element".to_owned())
}

/// `line L, column C` (both from 1) of a byte offset into the text.
fn line_col(text: &str, at: usize) -> String {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

fn element(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = start.local_name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("not well-formed XML: <{name}> has a bad attribute: {e}"))?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("not well-formed XML: <{name}> has a bad attribute value: {e}"))?;
        attrs.push((attr.key.local_name().as_ref().to_owned(), value.into_owned()));
    }
    Ok(Element { name, attrs, children: Vec::new(), text: String::new() })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err(format!("a second root element <{}>", el.name)),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(top) => top.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err("text outside the root element".to_owned()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_entities_and_cdata() {
        let root = parse(br#"<?xml version="1.0"?><!-- c --><a:x xmlns:a="u" a:k="v&amp;w"><a:y>1 &gt; 0 &#x41;<![CDATA[<b>]]></a:y><z/></a:x>"#)
            .expect("parses");
        assert_eq!(root.name, "x");
        assert_eq!(root.attr("k"), Some("v&w"));
        assert_eq!(root.child_text("y"), Some("1 > 0 A<b>"));
        assert!(root.child("z").is_some());
        assert_eq!(root.child_text("z"), None);
    }

    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_are_fine() {
        let root = parse(b"\xEF\xBB\xBF<?xml version='1.0'?>\r\n<a>\r\n<b>x\r\ny</b></a>\r\n").expect("parses");
        assert_eq!(root.child_text("b"), Some("x\ny"));
    }

    /// Ukrainian text in windows-1251, one byte per letter.
    fn cp1251(text: &str) -> Vec<u8> {
        text.chars()
            .map(|c| match c {
                'А'..='я' => (c as u32 - 'А' as u32 + 0xC0) as u8,
                'і' => 0xB3,
                'І' => 0xB2,
                'ї' => 0xBF,
                'Ї' => 0xAF,
                'є' => 0xBA,
                'Є' => 0xAA,
                'ґ' => 0xB4,
                '’' => 0x92,
                c if c.is_ascii() => c as u8,
                c => panic!("{c} is not in this test's windows-1251 table"),
            })
            .collect()
    }

    #[test]
    fn declared_encodings_are_read() {
        let doc =
            cp1251("<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>Евакуація з Куп’янська: їжа, ґанок, Єва</a>");
        assert_eq!(parse(&doc).expect("windows-1251").text(), "Евакуація з Куп’янська: їжа, ґанок, Єва");

        let latin = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>Qu\xE9bec \x96 Montr\xE9al</a>";
        assert_eq!(parse(latin).expect("latin-1").text(), "Québec – Montréal", "read as windows-1252");

        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>Тривога</a>".encode_utf16().flat_map(u16::to_le_bytes),
        );
        assert_eq!(parse(&utf16).expect("UTF-16 LE with a BOM").text(), "Тривога");
        let mut utf16be = vec![0xFE, 0xFF];
        utf16be.extend("<a>Тривога</a>".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(parse(&utf16be).expect("UTF-16 BE with a BOM").text(), "Тривога");

        // A UTF-16 declaration on an ASCII body: the bytes decide.
        assert_eq!(parse(b"<?xml version='1.0' encoding='UTF-16'?><a>x</a>").expect("ascii").text(), "x");
        // A stylesheet instruction is not a declaration.
        assert_eq!(parse(b"<?xml-stylesheet href='a.xsl'?><a>x</a>").expect("no declaration").text(), "x");
    }

    #[test]
    fn undeclared_or_misdeclared_encodings_are_errors_in_words() {
        for (bad, want) in [
            (
                &b"<?xml version=\"1.0\"?><a>Qu\xE9bec</a>"[..],
                "the body is not UTF-8 (byte 0xE9 at offset 26) and names no other encoding",
            ),
            (b"<a>Qu\xE9bec</a>", "byte 0xE9 at offset 5"),
            (b"<?xml version='1.0' encoding='UTF-8'?><a>\xE9</a>", "not valid UTF-8, as its XML declaration says"),
            (b"<?xml version='1.0' encoding='ebcdic-x'?><a/>", "names encoding `ebcdic-x`, which sirena cannot read"),
            // Single-byte encodings define every byte (WHATWG); a multi-byte one can break.
            (b"<?xml version='1.0' encoding='Shift_JIS'?><a>\x81 </a>", "not valid Shift_JIS"),
            (b"<?xml version='1.0' encoding='utf-8'", "never closed with `?>`"),
        ] {
            let err = parse(bad).expect_err("must fail");
            assert!(err.contains(want), "{:?}: {err}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_declared_entity_is_never_expanded() {
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>x&xxe;</a>"#;
        let err = parse(xxe).expect_err("refused");
        assert!(err.starts_with("the document uses the entity `&xxe;`"), "{err}");
        assert!(!err.contains("root:"), "nothing was read");
    }

    #[test]
    fn broken_documents_are_errors() {
        for (bad, want) in [
            (&b"<a><b>text</b>"[..], "never closed"),
            (b"<a></b>", "not well-formed"),
            (b"", "no root"),
            (b"<a/><b/>", "second root"),
            (b"hello", "outside the root"),
            (b"<a>&nbsp;</a>", "the entity `&nbsp;`"),
            (b"<a>\n<b></c></a>", "not well-formed XML at line 2, column"),
        ] {
            let err = parse(bad).expect_err("must fail");
            assert!(err.contains(want), "{:?}: {err}", String::from_utf8_lossy(bad));
        }
    }
}
