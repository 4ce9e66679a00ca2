//! The guides show the code of the tested examples, byte for byte, so they
//! cannot rot: change an example and this test asks you to update its guide.

use e2e::repo_root;

#[test]
fn guides_embed_the_tested_examples() {
    let root = repo_root();
    for guide in ["docs/guides/rust.md", "docs/guides/python.md", "docs/guides/javascript.md"] {
        let text = std::fs::read_to_string(root.join(guide)).expect("guide");
        let mut found = 0;
        for (i, _) in text.match_indices("<!-- source: ") {
            let rest = &text[i + "<!-- source: ".len()..];
            let path = &rest[..rest.find(" -->").expect("marker end")];
            let after = &rest[rest.find("```").expect("code block")..];
            let body_start = after.find('\n').expect("fence line") + 1;
            let body = &after[body_start..];
            let body = &body[..body.find("```").expect("closing fence")];
            let source = std::fs::read_to_string(root.join(path)).expect("example source");
            assert_eq!(body, source, "{guide} shows an outdated copy of {path}: run scripts/sync_guides.py");
            found += 1;
        }
        assert!(found > 0, "{guide} embeds no tested example");
    }
}
