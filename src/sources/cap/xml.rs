//! A small element tree over quick-xml's event reader.
//!
//! CAP messages and index feeds are a few kilobytes, so the decoders read the whole
//! document into a tree first and then look children up by *local* name. That is what
//! makes them tolerant of namespaces: `<alert xmlns="…cap:1.2">`, `<cap:alert>` and a
//! bare `<alert>` read the same, and a `<ds:Signature>` is a child nobody asks for.
//! The tree is strict about well-formedness: a truncated document or a mismatched end
//! tag is an error, never a shorter tree.

use quick_xml::XmlVersion;
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

    /// The first descendant (depth first, this element excluded) with this name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| if c.name == name { Some(c) } else { c.find(name) })
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(xml: &[u8]) -> Result<Element, String> {
    let mut reader = Reader::from_reader(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event =
            reader.read_event().map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.error_position()))?;
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
                        None => return Err(format!("unknown entity `&{};`", &*r)),
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

    #[test]
    fn broken_documents_are_errors() {
        for (bad, want) in [
            (&b"<a><b>text</b>"[..], "never closed"),
            (b"<a></b>", "not well-formed"),
            (b"", "no root"),
            (b"<a/><b/>", "second root"),
            (b"hello", "outside the root"),
            (b"<a>&nbsp;</a>", "unknown entity"),
        ] {
            let err = parse(bad).expect_err("must fail");
            assert!(err.contains(want), "{:?}: {err}", String::from_utf8_lossy(bad));
        }
    }
}
