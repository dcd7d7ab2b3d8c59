//! The extractor against an independent HTML5 parser: every page in
//! fixtures/conformance/pages (edge cases of the parsing algorithm, pages
//! shaped like real sites, and seeded random mixes) and the script list
//! that justhtml and ada-url give for it (fixtures/conformance/expected.py).

use std::collections::BTreeMap;
use std::path::Path;

use scriptscrape::extract::{Extractor, Script};
use url::Url;

fn row_of(s: &Script) -> Vec<String> {
    let b = |v: bool| v.to_string();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        s.index.to_string(),
        s.src
            .as_ref()
            .map_or(String::new(), |src| src.as_str().to_owned()),
        s.src
            .as_ref()
            .map_or(String::new(), |src| b(src.is_resolved())),
        b(s.inline.is_some()),
        b(s.svg),
        opt(&s.type_attr),
        b(s.is_async),
        b(s.defer),
        b(s.nomodule),
        opt(&s.integrity),
        opt(&s.crossorigin),
        s.inline
            .as_ref()
            .map_or(String::new(), |i| i.bytes.to_string()),
        s.inline
            .as_ref()
            .map_or(String::new(), |i| i.sha256.clone()),
    ]
}

#[test]
fn extractor_agrees_with_an_independent_html5_parser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance");
    let mut expected: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut rdr = csv::Reader::from_path(dir.join("expected.csv")).unwrap();
    for record in rdr.records() {
        let record = record.unwrap();
        let fields: Vec<String> = record.iter().map(str::to_owned).collect();
        expected
            .entry(fields[0].clone())
            .or_default()
            .push(fields[1..].to_vec());
    }

    let extractor = Extractor::new();
    let mut pages = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(dir.join("pages")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let (text, _) = scriptscrape::charset::decode(&bytes, Some("utf-8"), None);
        let url = Url::parse(&format!("https://conformance.test/{file}")).unwrap();
        let got: Vec<Vec<String>> = extractor.extract(&url, &text).iter().map(row_of).collect();
        let want = expected.remove(&file).unwrap_or_default();
        if got != want {
            failures.push(format!("{file}:\n  got  {got:?}\n  want {want:?}"));
        }
        pages += 1;
    }
    assert!(pages >= 150, "only {pages} pages");
    assert!(
        expected.is_empty(),
        "expected rows for missing pages: {:?}",
        expected.keys()
    );
    assert!(
        failures.is_empty(),
        "{} pages differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
