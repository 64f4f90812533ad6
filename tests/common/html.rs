//! The pages' HTML read as a browser's parser reads it, so tests assert on elements,
//! attributes and text (entities decoded) rather than on how the markup is spelled.

use scraper::{ElementRef, Html, Selector};

/// The elements of `page` that the CSS `selector` matches, in document order.
pub fn select<'a>(page: &'a Html, selector: &str) -> Vec<ElementRef<'a>> {
    let parsed = Selector::parse(selector).unwrap_or_else(|error| panic!("bad selector {selector}: {error}"));
    page.select(&parsed).collect()
}

/// The one element of `page` that `selector` matches; none or several is a failure.
pub fn one<'a>(page: &'a Html, selector: &str) -> ElementRef<'a> {
    let found = select(page, selector);
    assert_eq!(found.len(), 1, "{selector} matches {} elements in {}", found.len(), page.html());
    found[0]
}

/// An element's text, its descendants' included.
pub fn text(element: ElementRef) -> String {
    element.text().collect()
}

/// The values of every `name` attribute in `page`, in document order.
pub fn attributes<'a>(page: &'a Html, name: &str) -> Vec<&'a str> {
    select(page, &format!("[{name}]")).into_iter().filter_map(|element| element.attr(name)).collect()
}
