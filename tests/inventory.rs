//! Script inventory: the columns that describe where a script comes from
//! and sits, and `scriptscrape diff` between two runs.

use crate::support::{Run, TestServer};

const CHECKOUT: &str = r#"<!doctype html><html><head>
<script src="/js/app.js" nonce="n0nc3"></script>
<script src="https://cdn.payments.example/pay.js" integrity="sha384-abc" crossorigin="anonymous"></script>
</head><body>
<script>window.cart = 1;</script>
<script src="https://www.127.0.0.1.nip.invalid/x.js" async></script>
</body></html>"#;

#[test]
fn script_rows_say_host_third_party_position_and_nonce() {
    let server = TestServer::start();
    server.set_page("checkout", CHECKOUT);
    let run = Run::new();
    let page = server.url("/page/checkout");
    let input = run.urls("urls.txt", &[&page]);
    for (format, file) in [("csv", "s.csv"), ("jsonl", "s.jsonl")] {
        let out = run.run(&[&input, "--format", format, "-o", file], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let table = crate::support::Table::read(&run.path("s.csv"));
    let rows: Vec<[&str; 5]> = (0..table.rows.len())
        .map(|i| {
            [
                table.get(i, "src"),
                table.get(i, "host"),
                table.get(i, "third_party"),
                table.get(i, "position"),
                table.get(i, "nonce_present"),
            ]
        })
        .collect();
    let app = server.url("/js/app.js");
    assert_eq!(
        rows,
        [
            [app.as_str(), "127.0.0.1", "false", "head", "true"],
            [
                "https://cdn.payments.example/pay.js",
                "cdn.payments.example",
                "true",
                "head",
                "false"
            ],
            ["", "", "false", "body", "false"],
            [
                "https://www.127.0.0.1.nip.invalid/x.js",
                "www.127.0.0.1.nip.invalid",
                "true",
                "body",
                "false"
            ],
        ]
    );
    assert!(
        !std::fs::read_to_string(run.path("s.csv"))
            .unwrap()
            .contains("n0nc3")
    );

    // JSON Lines carries the same, typed.
    let text = std::fs::read_to_string(run.path("s.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["host"], "127.0.0.1");
    assert_eq!(first["third_party"], false);
    assert_eq!(first["position"], "head");
    assert_eq!(first["nonce_present"], true);
    let third: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    assert_eq!(third["host"], serde_json::Value::Null);
}
