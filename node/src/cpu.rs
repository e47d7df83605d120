//! CPU time of a process from Linux's scheduler statistics, without `unsafe`.

/// The CPU time every thread of process `pid` (`None`: this process) has used so far: the
/// first field of each `/proc/PID/task/TID/schedstat`, ns. `None` where the kernel does not
/// expose it (not Linux, schedstats compiled out, the process gone).
pub fn process_cpu_ns(pid: Option<u32>) -> Option<u64> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_owned(),
    };
    let mut total = 0u64;
    for task in std::fs::read_dir(dir).ok()? {
        let Ok(task) = task else { continue };
        // A thread that ended between the listing and the read: its time is in no file.
        let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// [`process_cpu_ns`] summed over processes.
pub fn processes_cpu_ns(pids: &[u32]) -> Option<u64> {
    pids.iter()
        .map(|p| process_cpu_ns(Some(*p)))
        .sum::<Option<u64>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let a = process_cpu_ns(None).expect("schedstat readable on Linux");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = process_cpu_ns(Some(std::process::id())).unwrap();
        assert!(b > a, "{a} → {b}");
        assert!(processes_cpu_ns(&[std::process::id()]).unwrap() >= b);
        assert_eq!(processes_cpu_ns(&[u32::MAX]), None);
    }
}
