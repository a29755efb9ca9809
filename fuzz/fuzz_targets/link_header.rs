//! Arbitrary text as an upstream's `Link` header: parsing is total (it never
//! panics and always terminates), and the `next` link it picks is one the
//! parser found.

#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use patchbay_connector::{next_link, parse_link_header};

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let links = parse_link_header(&header);
    for link in &links {
        let _ = link.has_rel("next");
        let _ = link.param("rel");
        // A target is the text between `<` and `>`, so it is in the header.
        assert!(header.contains(link.target.as_str()));
    }
    let next = next_link(&header);
    let expected = links
        .iter()
        .find(|link| link.has_rel("next"))
        .map(|link| link.target.clone());
    assert_eq!(next, expected);
});
