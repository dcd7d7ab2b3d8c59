//! Warehouse-ready exports: compressed text outputs (`.gz`, `.zst`,
//! `--compress`) and field selection (`--fields`, `--page-fields`).

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use crate::support::{Run, Table, TestServer, generated_scripts, wait_within};

/// The bytes of a gzip or zstd file, decompressed by the reference
/// decoders (every member or frame).
fn decompress(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(&bytes[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    } else {
        panic!("{} is not compressed", path.display());
    }
    out
}

/// How many gzip members the file holds.
fn gzip_members(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let mut rest = &bytes[..];
    let mut members = 0;
    while !rest.is_empty() {
        let mut gz = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut gz, &mut std::io::sink()).unwrap();
        rest = gz.into_inner();
        members += 1;
    }
    members
}

/// JSON Lines as objects.
fn json_lines(bytes: &[u8]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            serde_json::Value::Object(o) => o,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

/// Rows without the run-dependent elapsed_ms column.
fn steady(table: &Table) -> Vec<Vec<String>> {
    let skip = table.headers.iter().position(|h| h == "elapsed_ms");
    table
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != skip)
                .map(|(_, v)| v.clone())
                .collect()
        })
        .collect()
}

fn gen_list(run: &Run, server: &TestServer, n: u64) -> String {
    let urls: Vec<String> = (0..n).map(|i| server.url(&format!("/gen/{i}"))).collect();
    run.urls("urls.txt", &urls)
}

#[test]
fn compressed_outputs_hold_the_rows_of_the_plain_run() {
    let server = TestServer::start();
    let run = Run::new();
    let list = gen_list(&run, &server, 12);
    let common = [list.as_str(), "-c", "2", "--ordered", "-q"];
    let with = |extra: &[&str]| {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        let out = run.run(&args, None);
        assert_eq!(out.code, 0, "{extra:?}: {}", out.stderr);
        out
    };
    with(&["-o", "s.csv", "--pages", "p.csv"]);
    with(&["-o", "s.csv.gz", "--pages", "p.csv.zst"]);
    let plain_scripts = Table::read(&run.path("s.csv"));
    let plain_pages = Table::read(&run.path("p.csv"));
    assert_eq!(
        plain_scripts.rows.len(),
        (0..12).map(|n| generated_scripts(n).len()).sum::<usize>()
    );
    let gz_scripts = Table::parse(&decompress(&run.path("s.csv.gz")));
    let zst_pages = Table::parse(&decompress(&run.path("p.csv.zst")));
    assert_eq!(gz_scripts.headers, plain_scripts.headers);
    assert_eq!(gz_scripts.rows, plain_scripts.rows);
    assert_eq!(steady(&zst_pages), steady(&plain_pages));
    // The header, then one member per page (every page has scripts).
    assert_eq!(gzip_members(&run.path("s.csv.gz")), 1 + 12);
    assert!(!run.path("s.csv.gz.part").exists());

    // An independent reader: gzip(1), where installed.
    if let Ok(out) = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(run.path("s.csv.gz"))
        .output()
    {
        assert!(out.status.success());
        assert_eq!(Table::parse(&out.stdout).rows, plain_scripts.rows);
    }

    // JSON Lines from the name alone (.jsonl.zst), and to standard output
    // with --compress.
    with(&["-o", "s.jsonl.zst", "--pages", "p.jsonl.gz"]);
    let rows = json_lines(&decompress(&run.path("s.jsonl.zst")));
    assert_eq!(rows.len(), plain_scripts.rows.len());
    assert_eq!(rows[0]["index"], serde_json::json!(0));
    assert_eq!(rows[0]["inline"], serde_json::json!(true));
    let pages = json_lines(&decompress(&run.path("p.jsonl.gz")));
    assert_eq!(pages.len(), 12);
    let out = with(&["--compress", "zstd"]);
    let mut text = Vec::new();
    zstd::stream::read::Decoder::new(&out.stdout[..])
        .unwrap()
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(Table::parse(&text).rows, plain_scripts.rows);
    let out = with(&["--compress", "gzip", "--format", "jsonl"]);
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(&out.stdout[..])
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(json_lines(&text).len(), plain_scripts.rows.len());
}

#[test]
fn compression_that_disagrees_with_a_name_is_refused() {
    let server = TestServer::start();
    let run = Run::new();
    let list = gen_list(&run, &server, 1);
    for (args, words) in [
        (
            vec!["-o", "s.csv.gz", "--compress", "zstd"],
            "-o s.csv.gz names gzip compression, and --compress asks for zstd",
        ),
        (
            vec!["-o", "s.csv.zst", "--compress", "none"],
            "-o s.csv.zst names zstd compression, and --compress asks for none",
        ),
        (
            vec!["-o", "s.jsonl.gz", "--pages", "p.csv"],
            "-o s.jsonl.gz and --pages p.csv name different formats",
        ),
        (
            vec!["-o", "s.parquet", "--format", "jsonl"],
            "-o s.parquet names parquet, and --format asks for jsonl",
        ),
        (
            vec!["--pages", "p.jsonl"],
            "--pages p.jsonl names jsonl, and the scripts go to standard output as csv",
        ),
        (
            vec!["-o", "s.csv", "--compress", "gzip"],
            "-o s.csv names no compression, and --compress asks for gzip: name it s.csv.gz",
        ),
        (
            vec!["-o", "s.csv.xz"],
            "-o s.csv.xz: scriptscrape does not write .xz files: name it .gz or .zst",
        ),
        (
            vec!["-o", "s.json"],
            "-o s.json: JSON Lines files are named .jsonl",
        ),
        (
            vec!["-o", "s.csv.gzip"],
            "-o s.csv.gzip: scriptscrape does not write .gzip files: name it .gz or .zst",
        ),
    ] {
        let mut all = vec![list.as_str()];
        all.extend(args);
        let out = run.run(&all, None);
        assert_eq!(out.code, 2, "{all:?}: {}", out.stderr);
        assert!(out.stderr.contains(words), "{all:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
    assert_eq!(server.hits("/gen/0"), 0);
}

/// Lines of the whole members of a compressed file so far.
fn compressed_lines(path: &Path) -> usize {
    let compression = match std::fs::read(path) {
        Ok(bytes) => scriptscrape::output::Compression::sniff(&bytes),
        Err(_) => return 0,
    };
    let mut plain = Vec::new();
    match scriptscrape::output::compress::whole_members(path, compression, &mut plain) {
        Ok(_) => plain.iter().filter(|b| **b == b'\n').count(),
        Err(_) => 0,
    }
}

#[test]
fn a_killed_compressed_run_resumes_each_page_once() {
    let server = TestServer::start();
    let run = Run::new();
    let mut urls: Vec<String> = (0..40).map(|n| server.url(&format!("/gen/{n}"))).collect();
    urls.push(server.url("/slow-gen/20000/99"));
    let list = run.urls("urls.txt", &urls);
    let args = [
        list.as_str(),
        "-c",
        "4",
        "-o",
        "s.jsonl.gz",
        "--pages",
        "p.jsonl.zst",
        "--fields",
        "page_url,src,index",
        "--page-fields",
        "page_url,scripts,error,status",
    ];
    // Fewer fields resume as well.
    let mut child = run.spawn_quiet(&args);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while compressed_lines(&run.path("p.jsonl.zst.part")) < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the quick pages never finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What a power loss can leave: the scripts file's last member torn.
    let part = run.path("s.jsonl.gz.part");
    let len = std::fs::metadata(&part).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&part).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);

    std::fs::write(
        run.path("urls.txt"),
        urls.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n",
    )
    .unwrap();
    let mut resume = args.to_vec();
    resume.push("--resume");
    let mut child = run.spawn_quiet(&resume);
    let status = wait_within(&mut child, Duration::from_secs(60)).expect("resume ends");
    assert!(status.success());

    let pages = json_lines(&decompress(&run.path("p.jsonl.zst")));
    let mut listed: Vec<&str> = pages
        .iter()
        .map(|p| p["page_url"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = urls
        .iter()
        .map(|u| u.replace("/slow-gen/20000/", "/gen/"))
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "each page once in the report");
    let scripts = json_lines(&decompress(&run.path("s.jsonl.gz")));
    assert_eq!(
        scripts[0].keys().collect::<Vec<_>>(),
        ["page_url", "src", "index"]
    );
    for page in &pages {
        let url = page["page_url"].as_str().unwrap();
        let rows = scripts.iter().filter(|s| s["page_url"] == url).count();
        assert_eq!(Some(rows as u64), page["scripts"].as_u64(), "{url}");
    }
    // Pages the first run finished whole were not fetched again; the one
    // whose rows were torn was.
    let fetched_twice = (0..40)
        .filter(|n| server.hits(&format!("/gen/{n}")) > 1)
        .count();
    assert!(fetched_twice <= 1, "{fetched_twice} pages fetched twice");
}

#[test]
fn fields_choose_and_order_the_columns() {
    let server = TestServer::start();
    let run = Run::new();
    let list = gen_list(&run, &server, 6);
    let base = [list.as_str(), "-c", "2", "--ordered", "-q"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = run.run(&args, None);
        assert_eq!(out.code, 0, "{extra:?}: {}", out.stderr);
    };
    with(&["-o", "full.csv", "--pages", "fullp.csv"]);
    with(&[
        "-o",
        "few.csv",
        "--pages",
        "fewp.csv",
        "--fields",
        "src,page_url,inline_sha256,inline_text",
        "--page-fields",
        "status,page_url,scripts",
    ]);
    let full = Table::read(&run.path("full.csv"));
    let few = Table::read(&run.path("few.csv"));
    assert_eq!(
        few.headers,
        ["src", "page_url", "inline_sha256", "inline_text"]
    );
    assert_eq!(few.rows.len(), full.rows.len());
    for r in 0..full.rows.len() {
        for column in ["src", "page_url", "inline_sha256"] {
            assert_eq!(few.get(r, column), full.get(r, column), "row {r} {column}");
        }
    }
    // Naming inline_text keeps the text, as --inline-text would.
    let texts = few.column("inline_text");
    assert!(texts.contains(&"var page = 3;"), "{texts:?}");
    let fewp = Table::read(&run.path("fewp.csv"));
    assert_eq!(fewp.headers, ["status", "page_url", "scripts"]);
    assert_eq!(
        fewp.column("page_url"),
        Table::read(&run.path("fullp.csv")).column("page_url")
    );

    // JSON Lines keep the order given, and only those keys.
    with(&["-o", "few.jsonl", "--fields", "index,page_url,async"]);
    let rows = json_lines(&std::fs::read(run.path("few.jsonl")).unwrap());
    let keys: Vec<&String> = rows[0].keys().collect();
    assert_eq!(keys, ["index", "page_url", "async"]);
}

#[test]
fn bad_field_lists_are_one_line_that_lists_the_valid_names() {
    let server = TestServer::start();
    let run = Run::new();
    let list = gen_list(&run, &server, 1);
    for (args, words) in [
        (
            vec!["--fields", "page_url,scr"],
            "unknown field \"scr\"; valid fields: page_url,final_url,index,src,",
        ),
        (
            vec!["--fields", "src", "--inline-text"],
            "--inline-text writes the inline_text column, which --fields leaves out",
        ),
        (
            vec!["--page-fields", "status"],
            "--page-fields chooses the page report's columns: give --pages FILE too",
        ),
        (
            vec![
                "-o",
                "s.csv",
                "--pages",
                "p.csv",
                "--page-fields",
                "page_url,elapsed_ms",
                "--resume",
            ],
            "--resume reads back the outputs, and --page-fields lacks status,error,scripts",
        ),
    ] {
        let mut all = vec![list.as_str()];
        all.extend(args);
        let out = run.run(&all, None);
        assert_eq!(out.code, 2, "{all:?}: {}", out.stderr);
        assert!(out.stderr.contains(words), "{all:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
    assert_eq!(server.hits("/gen/0"), 0);
}

#[test]
fn diff_reads_outputs_with_fewer_fields_and_compressed_ones() {
    let server = TestServer::start();
    let run = Run::new();
    let list = gen_list(&run, &server, 5);
    let base = [list.as_str(), "-c", "2", "-q"];
    let scrape = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = run.run(&args, None);
        assert_eq!(out.code, 0, "{extra:?}: {}", out.stderr);
    };
    scrape(&["-o", "old.csv"]);
    scrape(&[
        "-o",
        "new.csv.zst",
        "--fields",
        "page_url,src,inline_sha256,index",
    ]);
    let out = run.run(&["diff", "old.csv", "new.csv.zst", "--format", "csv"], None);
    assert_eq!(out.code, 0, "no change expected: {}", out.stderr);
    assert_eq!(Table::parse(&out.stdout).rows.len(), 0);
    assert!(
        out.stderr.contains("compared without type, async, defer, nomodule, integrity, crossorigin: the new run's scripts output lacks type, async, defer, nomodule, integrity, crossorigin (written with --fields)"),
        "{}",
        out.stderr
    );

    scrape(&["-o", "thin.jsonl.gz", "--fields", "page_url,index"]);
    let out = run.run(&["diff", "old.csv", "thin.jsonl.gz"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "thin.jsonl.gz: lacks the src, inline_sha256 columns this needs (written with \
             --fields leaving them out?); needed: page_url, src, inline_sha256"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn parquet_with_fields_keeps_each_columns_field_id() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let server = TestServer::start();
    let run = Run::new();
    let list = gen_list(&run, &server, 4);
    let out = run.run(
        &[
            &list,
            "-q",
            "-o",
            "s.parquet",
            "--fields",
            "src,page_url,index",
            "--pages",
            "p.parquet",
            "--page-fields",
            "scripts,page_url",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let open = |name: &str| {
        SerializedFileReader::new(std::fs::File::open(run.path(name)).unwrap()).unwrap()
    };
    let scripts = open("s.parquet");
    let schema = scripts.metadata().file_metadata().schema_descr();
    let columns: Vec<(String, i32)> = schema
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.self_type().get_basic_info().id()))
        .collect();
    // Ids are positions in the full column list, whatever is chosen.
    assert_eq!(
        columns,
        [
            ("src".to_owned(), 3),
            ("page_url".to_owned(), 0),
            ("index".to_owned(), 2)
        ]
    );
    let rows: Vec<_> = scripts
        .get_row_iter(None)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows.len(),
        (0..4).map(|n| generated_scripts(n).len()).sum::<usize>()
    );
    let pages = open("p.parquet");
    let columns: Vec<String> = pages
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(columns, ["scripts", "page_url"]);
    for row in pages.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let (_, scripts) = row.get_column_iter().next().unwrap();
        assert!(matches!(scripts, Field::Long(n) if *n >= 1), "{row:?}");
    }
}

#[test]
fn parquet_refuses_compression_and_resume() {
    let server = TestServer::start();
    let run = Run::new();
    let list = gen_list(&run, &server, 1);
    for (args, words) in [
        (
            vec!["-o", "s.parquet", "--compress", "zstd"],
            "Parquet is compressed within",
        ),
        (
            vec!["--format", "parquet", "-o", "s.parquet.gz"],
            "Parquet is compressed within",
        ),
        (
            vec!["-o", "s.parquet", "--pages", "p.parquet", "--resume"],
            "--resume cannot continue --format parquet",
        ),
    ] {
        let mut all = vec![list.as_str()];
        all.extend(args);
        let out = run.run(&all, None);
        assert_eq!(out.code, 2, "{all:?}: {}", out.stderr);
        assert!(out.stderr.contains(words), "{all:?}: {}", out.stderr);
    }
    assert_eq!(server.hits("/gen/0"), 0);
}

#[test]
fn a_compressed_output_without_rows_is_still_a_valid_file() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/status/404")]);
    for name in ["none.jsonl.gz", "none.jsonl.zst"] {
        let out = run.run(&[&list, "-q", "-o", name], None);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(decompress(&run.path(name)).is_empty(), "{name}");
    }
}
