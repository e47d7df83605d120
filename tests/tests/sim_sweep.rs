//! `gaiamesh sim sweep` and `sim merge` end to end: a small grid × seeds runs on every core,
//! a second invocation resumes (nothing runs twice), one index reproduces its run byte for
//! byte (what a cluster task does), merge gathers every run with confidence intervals, and
//! the cluster forms (Kubernetes Indexed Job, Slurm array) are rendered and checked offline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_e2e::{fails, ok};

fn setup(r: &std::path::Path) {
    std::fs::write(
        r.join("tiny.toml"),
        "name = \"tiny\"\nnodes = 40\nduration = \"20s\"\nseed = 1\n[workload]\nupdates_per_second = 1.0\n",
    )
    .unwrap();
    std::fs::write(
        r.join("sweep.toml"),
        "scenario = \"tiny.toml\"\nseeds = 2\n[grid]\nnodes = [40, 60]\n\"workload.updates_per_second\" = [1.0, 2.0]\n",
    )
    .unwrap();
}

#[test]
fn a_sweep_runs_resumes_reproduces_merges_and_renders_for_clusters() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    setup(r);
    let out = ok(
        r,
        &[
            "sim",
            "sweep",
            "sweep.toml",
            "--out",
            "sw",
            "--jobs",
            "2",
            "--quiet",
        ],
    );
    assert!(out.contains("8 runs done"), "{out}");
    for i in 0..8 {
        let dir = r.join(format!("sw/runs/{i:06}"));
        assert!(dir.join("summary.json").is_file() && dir.join("point.json").is_file());
    }
    let point: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.join("sw/runs/000005/point.json")).unwrap(),
    )
    .unwrap();
    // run 5 = point 2 (nodes 60, 1.0 update/s), seed 2
    assert_eq!(point["point"], 2);
    assert_eq!(point["seed"], 2);
    assert_eq!(point["params"]["nodes"], 60);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.join("sw/runs/000005/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["nodes"], 60);
    assert_eq!(summary["seed"], 2);

    // Again: everything is there already.
    let again = ok(r, &["sim", "sweep", "sweep.toml", "--out", "sw", "--quiet"]);
    assert!(
        again.contains("0 runs done") && again.contains("8 found done already"),
        "{again}"
    );
    // One index, elsewhere: the same bytes (a cluster task computes what this machine did).
    ok(
        r,
        &[
            "sim",
            "sweep",
            "sweep.toml",
            "--out",
            "one",
            "--index",
            "5",
            "--quiet",
        ],
    );
    assert_eq!(
        std::fs::read(r.join("one/runs/000005/summary.json")).unwrap(),
        std::fs::read(r.join("sw/runs/000005/summary.json")).unwrap()
    );
    let err = fails(
        r,
        &["sim", "sweep", "sweep.toml", "--out", "one", "--index", "8"],
    );
    assert!(
        err.contains("out of range") && err.contains("8 runs"),
        "{err}"
    );

    // Merge: a row per run, a row per point with its interval, a chart per metric.
    let merged = ok(r, &["sim", "merge", "sw"]);
    assert!(merged.contains("8 runs of 4 points"), "{merged}");
    let runs = std::fs::read_to_string(r.join("sw/sweep.csv")).unwrap();
    assert_eq!(runs.lines().count(), 9, "{runs}");
    assert!(
        runs.starts_with("run,point,nodes,workload.updates_per_second,seed,propagation_p50_ms")
    );
    let points = std::fs::read_to_string(r.join("sw/points.csv")).unwrap();
    assert_eq!(points.lines().count(), 5, "{points}");
    let header: Vec<&str> = points.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in points.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[col("seeds")], "2");
        let (lo, mean, hi): (f64, f64, f64) = (
            f[col("propagation_p50_ms_ci95_low")].parse().unwrap(),
            f[col("propagation_p50_ms_mean")].parse().unwrap(),
            f[col("propagation_p50_ms_ci95_high")].parse().unwrap(),
        );
        assert!(lo <= mean && mean <= hi, "{line}");
    }
    let svg = std::fs::read_to_string(r.join("sw/sweep_propagation_p50_ms.svg")).unwrap();
    assert!(svg.contains("<polyline") && svg.contains("workload.updates_per_second=2.0"));

    // Cluster forms.
    ok(
        r,
        &[
            "sim",
            "sweep",
            "sweep.toml",
            "--out",
            "k8s",
            "--emit",
            "kubernetes",
            "--image",
            "reg.example/gaiamesh:1",
        ],
    );
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(r.join("k8s/kubernetes").join(f)).unwrap())
            .unwrap()
    };
    let job = read("job.json");
    assert_eq!(job["spec"]["completions"], 8);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        "reg.example/gaiamesh:1"
    );
    assert!(
        read("configmap.json")["data"]["tiny.toml"]
            .as_str()
            .unwrap()
            .contains("nodes = 40")
    );
    assert_eq!(read("networkpolicy.json")["kind"], "NetworkPolicy");
    ok(
        r,
        &[
            "sim",
            "sweep",
            "sweep.toml",
            "--out",
            "slurm",
            "--emit",
            "slurm",
        ],
    );
    let script = std::fs::read_to_string(r.join("slurm/sweep.slurm")).unwrap();
    assert!(script.contains("#SBATCH --array=0-7%"), "{script}");
    assert!(
        std::process::Command::new("bash")
            .arg("-n")
            .arg(r.join("slurm/sweep.slurm"))
            .status()
            .unwrap()
            .success()
    );

    // A sweep whose override the scenario refuses names the point before anything runs.
    std::fs::write(
        r.join("bad.toml"),
        "scenario = \"tiny.toml\"\n[grid]\nnodes = [40, \"many\"]\n",
    )
    .unwrap();
    let err = fails(r, &["sim", "sweep", "bad.toml", "--out", "bad"]);
    assert!(err.contains("nodes = \"many\""), "{err}");
    assert!(!r.join("bad/runs").exists());
}
