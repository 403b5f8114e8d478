//! How much memory brine may give its record cache: refused at start-up when the configured
//! size could not fit, rather than found out when the machine starts swapping or the kernel
//! stops the process.

use crate::StartupError;

const MIB: u64 = 1024 * 1024;

/// The cache's size in bytes, if `mib` fits in half the memory the process can have (the rest
/// is for connections, answers being relayed and Argon2's 19 MiB per thread).
pub fn check_cache(mib: u64) -> Result<u64, StartupError> {
    let bytes = mib.checked_mul(MIB).ok_or_else(|| too_large(mib, None))?;
    match available() {
        Some(limit) if bytes > limit / 2 => Err(too_large(mib, Some(limit))),
        _ => Ok(bytes),
    }
}

fn too_large(mib: u64, limit: Option<u64>) -> StartupError {
    let limit = limit.map_or_else(String::new, |l| {
        format!(" of the {} MiB this process may use", l / MIB)
    });
    StartupError::Setting(format!(
        "record_cache_mib = {mib} does not fit: the record cache may take at most half{limit}. \
         Lower it (0 keeps no records in memory)."
    ))
}

/// The machine's memory, or the process's control group's limit when lower (containers).
fn available() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
        });
    let group = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| group_limit(&text, |path| std::fs::read_to_string(path).ok()));
    match (total, group) {
        (Some(t), Some(g)) => Some(t.min(g)),
        (t, g) => t.or(g),
    }
}

/// The lowest `memory.max` on the way from the process's control group (cgroup v2, as named in
/// `/proc/self/cgroup`) up to the root: a systemd `MemoryMax=` sits on the service's own group,
/// a container's limit on the group at its root.
fn group_limit(own: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mut limit: Option<u64> = None;
    let mut dir = path.trim().trim_end_matches('/');
    loop {
        let found = read(&format!("/sys/fs/cgroup{dir}/memory.max"))
            .and_then(|text| text.trim().parse::<u64>().ok());
        limit = match (limit, found) {
            (Some(l), Some(f)) => Some(l.min(f)),
            (l, f) => l.or(f),
        };
        match dir.rfind('/') {
            Some(cut) => dir = &dir[..cut],
            None => return limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_larger_than_memory_is_refused_with_the_numbers() {
        assert_eq!(check_cache(0).unwrap(), 0);
        assert_eq!(check_cache(1).unwrap(), MIB);
        let err = check_cache(u64::MAX / MIB).unwrap_err().to_string();
        assert!(
            err.contains("record_cache_mib") && err.contains("MiB"),
            "{err}"
        );
        assert!(check_cache(u64::MAX).is_err(), "no overflow");
    }

    #[test]
    fn the_lowest_limit_between_the_process_group_and_the_root_counts() {
        let files = |path: &str| {
            match path {
                "/sys/fs/cgroup/memory.max" => Some("8589934592\n"),
                "/sys/fs/cgroup/system.slice/memory.max" => Some("max\n"),
                "/sys/fs/cgroup/system.slice/brine.service/memory.max" => Some("1073741824\n"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let own = "0::/system.slice/brine.service\n";
        assert_eq!(group_limit(own, files), Some(1 << 30));
        assert_eq!(group_limit("0::/\n", files), Some(8 << 30));
        assert_eq!(group_limit("0::/user.slice\n", files), Some(8 << 30));
        assert_eq!(group_limit("1:memory:/x\n", files), None, "cgroup v1 only");
        assert_eq!(group_limit("0::/elsewhere\n", |_| None), None);
    }
}
