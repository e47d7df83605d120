//! The same sweep for a cluster: a Kubernetes Indexed Job (one completion index per run)
//! and a Slurm job array script (one array task per run). Each task runs
//! `gaiamesh sim sweep SWEEP --out DIR --index I`; every run writes only its own directory,
//! so tasks never collide, and `gaiamesh sim merge DIR` gathers them afterwards.

use std::{fmt::Write, path::Path};

use super::Sweep;

/// Where and how the cluster runs the sweep.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// The container image with `gaiamesh` on its PATH (Kubernetes).
    pub image: String,
    /// The PersistentVolumeClaim the results go to, mounted at `/results` (Kubernetes).
    pub claim: String,
    /// The namespace of the Job and its ConfigMap (Kubernetes).
    pub namespace: String,
    /// Runs at once.
    pub parallelism: usize,
    /// The `gaiamesh` binary on the cluster's nodes (Slurm).
    pub binary: String,
}

/// The Job's name: `gaiamesh-sweep-` and the sweep file's stem, as a DNS label.
fn job_name(sweep: &Sweep) -> String {
    let stem = sweep
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let clean: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = format!("gaiamesh-sweep-{}", clean.trim_matches('-'));
    name.chars()
        .take(52)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// The Kubernetes objects (each a JSON document, which `kubectl apply -f DIR` reads as
/// YAML's subset): a ConfigMap with the sweep and scenario files, a NetworkPolicy that
/// gives the runs no network at all (a simulation needs none), and an Indexed Job with one
/// completion per run writing to the claim. `sweep_text` and `scenario_text` are the files
/// as they are. File name → object.
pub fn kubernetes(
    sweep: &Sweep,
    sweep_text: &str,
    scenario_text: &str,
    cluster: &Cluster,
) -> Vec<(&'static str, serde_json::Value)> {
    let name = job_name(sweep);
    let ns = cluster.namespace.as_str();
    let labels = serde_json::json!({"app.kubernetes.io/name": "gaiamesh-sweep", "app.kubernetes.io/instance": name});
    let scenario_file = sweep
        .scenario_path
        .file_name()
        .map_or("scenario.toml".into(), |f| f.to_string_lossy().into_owned());
    // the sweep file names its scenario relative to itself: both sit side by side here
    let sweep_text = rewrite_scenario(sweep_text, &scenario_file);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"sweep.toml": sweep_text, scenario_file.clone(): scenario_text},
    });
    let isolated = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "podSelector": {"matchLabels": labels},
            "policyTypes": ["Ingress", "Egress"],
        },
    });
    let job = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "annotations": {
                "checkov.io/skip1": "CKV_K8S_43=pin the image by digest with --image REGISTRY/gaiamesh@sha256:…"
            }
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": sweep.runs(),
            "parallelism": cluster.parallelism.min(sweep.runs()).max(1),
            "backoffLimitPerIndex": 2,
            "maxFailedIndexes": sweep.runs(),
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001,
                        "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}
                    },
                    "containers": [{
                        "name": "run",
                        "image": cluster.image,
                        "imagePullPolicy": "Always",
                        "command": ["sh", "-c",
                            "exec gaiamesh sim sweep /sweep/sweep.toml --out /results --index \"$JOB_COMPLETION_INDEX\" --quiet"],
                        "resources": {
                            "requests": {"cpu": "1", "memory": "1Gi"},
                            "limits": {"cpu": "1", "memory": "8Gi"}
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}
                        },
                        "volumeMounts": [
                            {"name": "sweep", "mountPath": "/sweep", "readOnly": true},
                            {"name": "results", "mountPath": "/results"}
                        ]
                    }],
                    "volumes": [
                        {"name": "sweep", "configMap": {"name": name}},
                        {"name": "results", "persistentVolumeClaim": {"claimName": cluster.claim}}
                    ]
                }
            }
        }
    });
    vec![
        ("configmap.json", config),
        ("networkpolicy.json", isolated),
        ("job.json", job),
    ]
}

/// The sweep text with its `scenario = …` line naming `file` (the file beside it).
fn rewrite_scenario(sweep_text: &str, file: &str) -> String {
    let mut out = String::new();
    for line in sweep_text.lines() {
        if line.trim_start().starts_with("scenario") && line.contains('=') {
            let _ = writeln!(out, "scenario = {}", toml::Value::String(file.to_owned()));
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// A Slurm batch script: a job array with one task per run, at most `parallelism` at once,
/// each running its index into `out` (a directory every node sees).
pub fn slurm(sweep: &Sweep, sweep_path: &Path, out: &Path, cluster: &Cluster) -> String {
    let last = sweep.runs().saturating_sub(1);
    let quote = |p: &Path| shell_quote(&p.display().to_string());
    format!(
        "#!/bin/bash\n\
         # A gaiamesh simulation sweep as a Slurm job array: {runs} runs ({points} points x {seeds} seeds).\n\
         # Submit: sbatch {script}    Then gather: gaiamesh sim merge {out_q}\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --array=0-{last}%{par}\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --mem=8G\n\
         #SBATCH --output={out_s}/slurm-%A_%a.out\n\
         set -euo pipefail\n\
         exec {bin} sim sweep {sweep_q} --out {out_q} --index \"$SLURM_ARRAY_TASK_ID\" --quiet\n",
        runs = sweep.runs(),
        points = sweep.points(),
        seeds = sweep.seeds.len(),
        script = "sweep.slurm",
        name = job_name(sweep),
        par = cluster.parallelism.max(1),
        out_s = out.display(),
        out_q = quote(out),
        sweep_q = quote(sweep_path),
        bin = shell_quote(&cluster.binary),
    )
}

/// `s` quoted for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Cluster, kubernetes, shell_quote, slurm};
    use crate::sweep::Sweep;

    fn sweep(dir: &std::path::Path) -> (Sweep, String, String) {
        let scenario = "name = \"base\"\nnodes = 50\nduration = \"10s\"\nseed = 1\n";
        std::fs::write(dir.join("base.toml"), scenario).unwrap();
        let text = "# a comment\nscenario = \"base.toml\"\nseeds = 3\n[grid]\nnodes = [50, 60]\n";
        let p = dir.join("My Sweep.toml");
        std::fs::write(&p, text).unwrap();
        (
            Sweep::load(&p).unwrap(),
            text.to_owned(),
            scenario.to_owned(),
        )
    }

    fn cluster() -> Cluster {
        Cluster {
            image: "registry.example/gaiamesh:1".into(),
            claim: "sweep-results".into(),
            namespace: "research".into(),
            parallelism: 4,
            binary: "/opt/gaiamesh/bin/gaiamesh".into(),
        }
    }

    #[test]
    fn the_indexed_job_has_one_completion_per_run_and_carries_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let (s, text, scenario) = sweep(dir.path());
        let k = kubernetes(&s, &text, &scenario, &cluster());
        let names: Vec<&str> = k.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["configmap.json", "networkpolicy.json", "job.json"]);
        let job = &k[2].1;
        assert_eq!(job["metadata"]["namespace"], "research");
        // no network at all for the runs
        assert_eq!(
            k[1].1["spec"]["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
        assert!(k[1].1["spec"].get("egress").is_none());
        assert_eq!(job["kind"], "Job");
        assert_eq!(job["metadata"]["name"], "gaiamesh-sweep-my-sweep");
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], 6);
        assert_eq!(job["spec"]["parallelism"], 4);
        let pod = &job["spec"]["template"]["spec"];
        let cmd = pod["containers"][0]["command"][2].as_str().unwrap();
        assert!(cmd.contains("--index \"$JOB_COMPLETION_INDEX\""), "{cmd}");
        assert_eq!(
            pod["volumes"][1]["persistentVolumeClaim"]["claimName"],
            "sweep-results"
        );
        let files = &k[0].1["data"];
        assert_eq!(files["base.toml"], scenario.as_str());
        let carried = files["sweep.toml"].as_str().unwrap();
        // the carried sweep still parses with its scenario beside it
        let d2 = tempfile::tempdir().unwrap();
        std::fs::write(d2.path().join("base.toml"), &scenario).unwrap();
        std::fs::write(d2.path().join("sweep.toml"), carried).unwrap();
        assert_eq!(
            Sweep::load(&d2.path().join("sweep.toml")).unwrap().runs(),
            6
        );
    }

    #[test]
    fn the_slurm_array_has_one_task_per_run_and_quotes_its_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, _) = sweep(dir.path());
        let script = slurm(
            &s,
            &s.path,
            std::path::Path::new("/scratch/out dir"),
            &cluster(),
        );
        assert!(script.contains("#SBATCH --array=0-5%4"), "{script}");
        assert!(
            script.contains("--index \"$SLURM_ARRAY_TASK_ID\""),
            "{script}"
        );
        assert!(script.contains("--out '/scratch/out dir'"), "{script}");
        assert!(script.contains("My Sweep.toml'"), "{script}");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        // bash accepts it
        let f = dir.path().join("sweep.slurm");
        std::fs::write(&f, &script).unwrap();
        let ok = std::process::Command::new("bash")
            .arg("-n")
            .arg(&f)
            .status();
        if let Ok(status) = ok {
            assert!(status.success(), "bash -n refused the script");
        }
    }
}
