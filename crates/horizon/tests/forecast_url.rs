//! `horizon forecast FILE --url URL`: the same file forecast by a running
//! server (the real binary, embedded) writes the same rows as the local
//! command, and the model stays on the server.

mod served;

use served::Served;
use std::process::Command;

fn horizon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_horizon"))
        .args(args)
        .env_remove("HORIZON_API_KEY")
        .output()
        .expect("run horizon")
}

fn rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("output written")
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_forecasts_a_file_like_the_local_command() {
    let served = Served::start(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("shop sales.csv");
    // Dates with a gap and an empty value; an integer index; out of order.
    std::fs::write(
        &csv,
        "unique_id,ds,y\n\
         b,2024-01-02,7\n\
         b,2024-01-01,5\n\
         a,2024-01-01,10\n\
         a,2024-01-02,\n\
         a,2024-01-04,13\n\
         b,2024-01-03,9\n\
         c,3,4\n\
         c,1,2\n\
         c,5,6\n",
    )
    .expect("write csv");
    let csv = csv.to_str().expect("utf-8 path").to_string();
    let local = dir.path().join("local.csv");
    let remote = dir.path().join("remote.csv");
    let common = ["--horizon", "2", "--method", "drift", "--level", "80"];
    let run = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["forecast", csv.as_str()];
        args.extend(common);
        args.extend(["--out", out.to_str().expect("utf-8 path")]);
        args.extend(extra);
        let out = horizon(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Not a terminal: no progress bar.
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&local, &[]);
    run(&remote, &["--url", &served.base]);
    let (local, remote) = (rows(&local), rows(&remote));
    assert_eq!(
        local[0],
        ["unique_id", "ds", "drift", "drift-lo-80", "drift-hi-80"]
    );
    assert_eq!(remote.len(), 1 + 3 * 2, "{remote:?}");
    for (l, r) in local.iter().zip(&remote).skip(1) {
        assert_eq!(l[..2], r[..2], "ids and dates");
        for (a, b) in l[2..].iter().zip(&r[2..]) {
            let (a, b): (f64, f64) = (a.parse().expect("number"), b.parse().expect("number"));
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{l:?} vs {r:?}");
        }
    }
    // In the file's order of first appearance: b, a, c.
    assert_eq!(remote[1][..2], ["b", "2024-01-04"], "{remote:?}");
    assert_eq!(remote[3][..2], ["a", "2024-01-05"], "{remote:?}");
    assert_eq!(remote[5][..2], ["c", "7"], "{remote:?}");

    // The model is named after the file and stays on the server.
    let models: serde_json::Value = reqwest::get(served.url("/v1/models/shop-sales"))
        .await
        .expect("GET model")
        .json()
        .await
        .expect("JSON");
    assert_eq!(models["data"]["latest_version"], 1, "{models}");
    // With its integer axis: the server continues it too.
    let answer: serde_json::Value = reqwest::Client::new()
        .post(served.url("/v1/models/shop-sales/forecast"))
        .json(&serde_json::json!({"horizon": 1, "series": ["c"]}))
        .send()
        .await
        .expect("POST forecast")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        answer["data"]["series"][0]["ds"],
        serde_json::json!([7]),
        "{answer}"
    );

    // What the server refuses is said, with the field.
    let out = horizon(&[
        "forecast",
        &csv,
        "--horizon",
        "2",
        "--method",
        "magic",
        "--url",
        &served.base,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--method"), "{err}");
    let out = horizon(&[
        "forecast",
        &csv,
        "--horizon",
        "2",
        "--season-length",
        "0",
        "--url",
        &served.base,
    ]);
    // Refused before anything is sent, as the local command refuses it.
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--season-length"), "{err}");
}
