//! Markdown to HTML for model output, safe to put into the page with `inner_html`.
//!
//! [`render`] parses with pulldown-cmark (tables and strikethrough on) and rewrites the events
//! before they reach the HTML writer, so that nothing the model writes can become markup:
//!
//! - raw HTML (blocks and inline) is emitted as text, so the writer escapes it;
//! - links keep only `http`, `https`, `mailto` or relative URLs; any other scheme
//!   (`javascript:`, `data:`, `vbscript:`, …) drops the link and keeps its text;
//! - images become links to the image (no remote loads from the page), under the same rule;
//! - code blocks are `<pre><code class="language-x">` with escaped contents and a language name
//!   reduced to safe characters.
//!
//! Links are written by this module (never from the input's markup) with
//! `rel="nofollow noopener noreferrer"` and `target="_blank"`, so following one does not leave
//! the chat. The output is plain data: pure, no I/O. Concurrency: none (a pure function).

use pulldown_cmark::{CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Markdown to HTML with every raw HTML construct escaped and unsafe URLs removed (see the
/// module documentation). An unfinished document (an answer still streaming, with an open code
/// fence or emphasis) renders as far as it goes.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut sanitizer = Sanitizer::default();
    let events = Parser::new_ext(markdown, options).flat_map(|e| sanitizer.event(e));
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// Whether a link or image URL may appear in the page: `http`, `https`, `mailto`, or no scheme
/// at all (relative, `#fragment`, `//host/path`). Judged the way browsers read URLs: leading
/// and trailing spaces and control characters, and tabs and newlines anywhere, are ignored, and
/// the scheme is case-insensitive.
pub fn is_safe_url(url: &str) -> bool {
    let cleaned: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    // A scheme ends at the first ':' that comes before any '/', '?' or '#'.
    let Some(end) = cleaned.find([':', '/', '?', '#']) else {
        return true;
    };
    if !cleaned[end..].starts_with(':') {
        return true;
    }
    let scheme = cleaned[..end].to_ascii_lowercase();
    matches!(scheme.as_str(), "http" | "https" | "mailto")
}

/// What an open link or image became, so its end can be written to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    /// Written as `<a …>`: close with `</a>`.
    Anchor,
    /// Dropped (unsafe URL, or an image inside a link): its content stays as text.
    Dropped,
}

/// Rewrites parser events one at a time (see the module documentation).
#[derive(Default)]
struct Sanitizer {
    /// Links and images currently open, innermost last.
    open: Vec<Open>,
}

impl Sanitizer {
    /// The events to write in place of `event`.
    fn event<'a>(&mut self, event: Event<'a>) -> Vec<Event<'a>> {
        match event {
            Event::Html(raw) | Event::InlineHtml(raw) => vec![Event::Text(raw)],
            // Raw HTML blocks have no wrapper of their own; as escaped text they read best as a
            // paragraph.
            Event::Start(Tag::HtmlBlock) => vec![Event::Start(Tag::Paragraph)],
            Event::End(TagEnd::HtmlBlock) => vec![Event::End(TagEnd::Paragraph)],
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            }) => {
                let inside_anchor = self.open.contains(&Open::Anchor);
                let href = match link_type {
                    LinkType::Email => format!("mailto:{dest_url}"),
                    _ => dest_url.to_string(),
                };
                if inside_anchor || !is_safe_url(&href) {
                    self.open.push(Open::Dropped);
                    return Vec::new();
                }
                self.open.push(Open::Anchor);
                vec![Event::InlineHtml(anchor_start(&href, &title, None).into())]
            }
            Event::Start(Tag::Image {
                dest_url, title, ..
            }) => {
                let inside_anchor = self.open.contains(&Open::Anchor);
                if inside_anchor || !is_safe_url(&dest_url) {
                    self.open.push(Open::Dropped);
                    return Vec::new();
                }
                self.open.push(Open::Anchor);
                vec![Event::InlineHtml(
                    anchor_start(&dest_url, &title, Some("image-link")).into(),
                )]
            }
            Event::End(TagEnd::Link | TagEnd::Image) => match self.open.pop() {
                Some(Open::Anchor) => vec![Event::InlineHtml(CowStr::Borrowed("</a>"))],
                _ => Vec::new(),
            },
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let lang = code_language(&info);
                vec![Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(
                    lang.into(),
                )))]
            }
            other => vec![other],
        }
    }
}

/// `<a href="…" …>` for an already vetted URL, every attribute value escaped.
fn anchor_start(href: &str, title: &str, class: Option<&str>) -> String {
    let mut tag = format!(
        "<a href=\"{}\" rel=\"nofollow noopener noreferrer\" target=\"_blank\"",
        escape_attribute(href)
    );
    if !title.is_empty() {
        tag.push_str(&format!(" title=\"{}\"", escape_attribute(title)));
    }
    if let Some(class) = class {
        tag.push_str(&format!(" class=\"{class}\""));
    }
    tag.push('>');
    tag
}

/// Escapes text for a double-quoted attribute value.
fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first word of a fence's info string, reduced to characters that are harmless in a class
/// name (`c++` and `objective-c` survive; quotes and brackets do not). At most 32 characters.
fn code_language(info: &str) -> String {
    info.split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.' | '#'))
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No markup the input could have smuggled in: every `<` in the output starts a tag from the
    /// writer's own small vocabulary, no tag has an event handler or a style, and every `href`
    /// passes the URL rule. (Escaped text such as `&lt;script&gt;` is harmless and allowed.)
    fn assert_only_safe_tags(html: &str) {
        const ALLOWED: [&str; 25] = [
            "p",
            "em",
            "strong",
            "del",
            "code",
            "pre",
            "a",
            "ul",
            "ol",
            "li",
            "blockquote",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "hr",
            "br",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
        ];
        let mut rest = html;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            let end = rest.find('>').expect("an unclosed tag");
            let tag = &rest[..end];
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(
                ALLOWED.contains(&name.as_str()),
                "unexpected tag <{name}> in {html}"
            );
            let lower = tag.to_ascii_lowercase();
            assert!(
                !lower.contains(" on") && !lower.contains("style="),
                "attribute in <{tag}>"
            );
            if let Some(h) = lower.find("href=\"") {
                let value = &tag[h + 6..];
                let value = &value[..value.find('"').unwrap()];
                assert!(is_safe_url(value), "href {value} in {html}");
            }
        }
    }

    #[test]
    fn ordinary_markdown_renders() {
        let html =
            render("# Title\n\nSome *emphasis*, **strong**, ~~gone~~ and `code`.\n\n- a\n- b\n");
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<em>emphasis</em>"));
        assert!(html.contains("<strong>strong</strong>"));
        assert!(html.contains("<del>gone</del>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<li>a</li>"));
        assert_only_safe_tags(&html);
    }

    #[test]
    fn tables_render() {
        let html = render("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<td>1</td>"), "{html}");
        assert_only_safe_tags(&html);
    }

    #[test]
    fn script_tags_are_text() {
        for input in [
            "<script>alert(1)</script>",
            "Hello <script>alert(1)</script> there",
            "<SCRIPT src=//evil.example/x.js></SCRIPT>",
            "<style>body{display:none}</style>",
        ] {
            let html = render(input);
            assert_only_safe_tags(&html);
            assert!(html.contains("&lt;"), "{html}");
        }
        assert!(
            render("<script>alert(1)</script>").contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        );
    }

    #[test]
    fn event_handler_attributes_never_become_markup() {
        for input in [
            "<img src=x onerror=alert(1)>",
            "text <img src=x onerror=alert(1)> text",
            "<div onmouseover=\"alert(1)\">hover</div>",
            "<svg/onload=alert(1)>",
        ] {
            let html = render(input);
            let lower = html.to_ascii_lowercase();
            assert!(!lower.contains("<img") && !lower.contains("<svg") && !lower.contains("<div"));
            assert_only_safe_tags(&html);
        }
    }

    #[test]
    fn javascript_links_lose_their_link_and_keep_their_text() {
        for input in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x]( javascript:alert(1) )",
            "[x](&#106;avascript:alert(1))",
            "[x](javascript&colon;alert(1))",
            "[x](java%0Ascript:alert(1))",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "[x](vbscript:msgbox(1))",
            "<javascript:alert(1)>",
            "[x][r]\n\n[r]: javascript:alert(1)",
        ] {
            let html = render(input);
            assert!(!html.contains("<a "), "{input} gave {html}");
            assert_only_safe_tags(&html);
        }
        assert_eq!(render("[x](javascript:alert(1))"), "<p>x</p>\n");
    }

    #[test]
    fn safe_links_stay_and_open_elsewhere() {
        let html =
            render("[docs](https://example.com/a?b=1&c=\"2\") and [rel](/chat) and <mailto:a@b.c>");
        assert!(html.contains(
            "<a href=\"https://example.com/a?b=1&amp;c=&quot;2&quot;\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">docs</a>"
        ), "{html}");
        assert!(html.contains("<a href=\"/chat\""), "{html}");
        assert!(html.contains("<a href=\"mailto:a@b.c\""), "{html}");
        let email = render("<someone@example.com>");
        assert!(
            email.contains("href=\"mailto:someone@example.com\""),
            "{email}"
        );
        let titled = render("[t](http://x.example \"a \\\" title\")");
        assert!(titled.contains("title=\"a &quot; title\""), "{titled}");
        assert_only_safe_tags(&titled);
    }

    #[test]
    fn raw_html_anchors_are_text() {
        for input in [
            "<a href=\"javascript:alert(1)\">click</a>",
            "<a href=\"https://example.com\">fine url, still raw html</a>",
            "Inline <a href='x' onclick='alert(1)'>link</a>.",
        ] {
            let html = render(input);
            assert!(!html.contains("<a "), "{html}");
            assert!(html.contains("&lt;a href="), "{html}");
            assert_only_safe_tags(&html);
        }
    }

    #[test]
    fn images_become_links_and_load_nothing() {
        let html = render("![a cat](https://example.com/cat.png)");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com/cat.png\" rel=\"nofollow noopener noreferrer\" target=\"_blank\" class=\"image-link\">a cat</a>"),
            "{html}"
        );
        let bad =
            render("![x](javascript:alert(1)) ![y](data:image/svg+xml,<svg onload=alert(1)>)");
        assert!(!bad.contains("<a "), "{bad}");
        assert_only_safe_tags(&bad);
        let nested = render("[![inner](https://i.example/x.png)](https://o.example/)");
        assert_eq!(nested.matches("<a ").count(), 1, "{nested}");
        assert_only_safe_tags(&nested);
    }

    #[test]
    fn entities_do_not_turn_into_markup() {
        let html = render(
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#60;img src=x onerror=alert(1)&#62;",
        );
        assert_only_safe_tags(&html);
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;img"), "{html}");
    }

    #[test]
    fn code_blocks_are_escaped_with_a_clean_language() {
        let html = render("```rust\nfn main() { println!(\"<b>hi</b>\"); }\n```\n");
        assert!(
            html.starts_with("<pre><code class=\"language-rust\">"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;"), "{html}");
        let sneaky = render("```\"><script>alert(1)</script>\nx\n```\n");
        assert_only_safe_tags(&sneaky);
        assert!(
            sneaky.contains("class=\"language-scriptalert1script\""),
            "{sneaky}"
        );
        let cpp = render("```c++ extra words\nint x;\n```");
        assert!(cpp.contains("class=\"language-c++\""), "{cpp}");
        let inline = render("`<script>alert(1)</script>`");
        assert!(inline.contains("<code>&lt;script&gt;"), "{inline}");
    }

    #[test]
    fn unfinished_documents_mid_stream_stay_safe() {
        let open_fence = render(
            "Here you go:\n\n```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>",
        );
        assert!(
            open_fence.contains("<pre><code class=\"language-html\">"),
            "{open_fence}"
        );
        assert_only_safe_tags(&open_fence);
        for partial in [
            "<scr",
            "<script",
            "<img src=x oner",
            "[x](javascript:",
            "[x](java",
            "**bold but not yet",
            "| a | b |\n|---|",
            "```",
            "~~~\n<b>",
        ] {
            assert_only_safe_tags(&render(partial));
        }
    }

    #[test]
    fn url_rule() {
        for ok in [
            "http://a",
            "HTTPS://a",
            "mailto:a@b",
            "/relative",
            "relative/path",
            "#frag",
            "?q=1",
            "//host/x",
            "a/b:c",
            "",
        ] {
            assert!(is_safe_url(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            " javascript:x",
            "\u{1}javascript:x",
            "java\tscript:x",
            "java\nscript:x",
            "data:text/html,x",
            "file:///etc/passwd",
            "vbscript:x",
            "blob:x",
        ] {
            assert!(!is_safe_url(bad), "{bad:?}");
        }
    }
}
