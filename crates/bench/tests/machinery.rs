//! The bench machinery at a tiny scale: every version, the floors and the engine targets run
//! through the real binary (each case in its child process), the outputs exist and hold
//! every figure; and a wrong answer is an error, not a figure.

use logstore_bench::digest::Digest;
use logstore_bench::floors::VecFloor;
use logstore_bench::progress::Progress;
use logstore_bench::run::{KeyPair, Subject, drive};
use logstore_bench::workload::{InputEntry, MessageSize, input};
use std::process::Command;
use std::sync::Mutex;

#[test]
fn a_tiny_run_of_every_version_writes_every_output() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_logstore-bench"))
        .args(["--scale", "200", "--engine-scale", "2500", "--memory-scale", "1500", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let cases: Vec<&str> =
        json["rows"].as_array().unwrap().iter().map(|r| r["case"].as_str().unwrap()).collect();
    for want in [
        "floor-vec-small",
        "floor-vec",
        "floor-fdatasync",
        "V1",
        "V4",
        "V8",
        "engine",
        "engine-memory",
    ] {
        assert!(cases.contains(&want), "{want} missing from {cases:?}");
    }
    for row in json["rows"].as_array().unwrap() {
        assert!(row["write_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["read_s"].as_f64().unwrap() > 0.0, "{row}");
    }
    let v4 = json["rows"].as_array().unwrap().iter().find(|r| r["case"] == "V4").unwrap();
    assert_eq!(v4["scale"], 200);
    assert!(v4["write_floor"][1].as_f64().unwrap() > 0.0, "{v4}");
    assert!(v4["write_vs_report"].as_f64().unwrap() > 0.0, "{v4}");
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(json["targets"].as_array().unwrap().len(), 9, "{}", json["targets"]);
    assert!(json["git_commit"].as_str().is_some());
    let versions = json["config"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 8);
    assert_eq!(versions[3]["codec"], "Json");
    assert_eq!(versions[7]["compression"], "Lz4");
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("| V8 |") && report.contains("Engine target"), "{report}");
    let svg = std::fs::read_to_string(out.path().join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("V1"), "{}", &svg[..svg.len().min(200)]);
    // The stores' files are removed after each case.
    assert!(!out.path().join("data").exists());
}

#[test]
fn a_bad_flag_fails_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_logstore-bench"))
        .args(["--versions", "V9", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown version V9"));
}

/// A store that answers reads wrongly, in the way its `Fault` says.
struct Wrong {
    entries: Mutex<Vec<InputEntry>>,
    fault: Fault,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Nothing,
    DropsOne,
    SwapsTwo,
    ChangesAByte,
    NewestOldestFirst,
}

impl Subject for Wrong {
    fn append(&self, entry: &InputEntry) -> anyhow::Result<KeyPair> {
        let mut entries = self.entries.lock().unwrap();
        entries.push(entry.clone());
        Ok((1, entries.len() as u64))
    }

    fn read_all(&self, digest: &mut Digest) -> anyhow::Result<()> {
        let entries = self.entries.lock().unwrap();
        let n = entries.len();
        let mut order: Vec<usize> = (0..n).collect();
        match self.fault {
            Fault::DropsOne => drop(order.remove(n / 2)),
            Fault::SwapsTwo => order.swap(1, 2),
            _ => {}
        }
        for i in order {
            let mut message = entries[i].message.clone();
            if self.fault == Fault::ChangesAByte && i == n / 2 {
                message.replace_range(0..1, "#");
            }
            digest.add(1, i as u64 + 1, &message, entries[i].metadata.as_deref());
        }
        Ok(())
    }

    fn read_newest(&self, _from_ms: u64, count: usize, digest: &mut Digest) -> anyhow::Result<()> {
        let entries = self.entries.lock().unwrap();
        let newest: Vec<usize> = (entries.len() - count..entries.len()).collect();
        let order: Box<dyn Iterator<Item = &usize>> = match self.fault {
            Fault::NewestOldestFirst => Box::new(newest.iter()),
            _ => Box::new(newest.iter().rev()),
        };
        for &i in order {
            digest.add(1, i as u64 + 1, &entries[i].message, entries[i].metadata.as_deref());
        }
        Ok(())
    }
}

#[test]
fn verification_turns_a_wrong_answer_into_an_error() {
    let input = input(1_500, 9, MessageSize::Mixed, None);
    let run = |fault| {
        let wrong = Wrong { entries: Mutex::new(Vec::new()), fault };
        drive(&wrong, &input, 1, &Progress::hidden())
    };
    let m = run(Fault::Nothing).unwrap();
    assert_eq!((m.scale, m.newest_count), (1_500, 1_000));
    for fault in [Fault::DropsOne, Fault::SwapsTwo, Fault::ChangesAByte, Fault::NewestOldestFirst] {
        let err = format!("{:#}", run(fault).unwrap_err());
        assert!(err.contains("verification failed"), "{fault:?}: {err}");
    }
    // The floors pass the same checks.
    assert!(drive(&VecFloor::with_capacity(10), &input, 1, &Progress::hidden()).is_ok());
}
