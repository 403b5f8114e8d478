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
    let group = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match (total, group) {
        (Some(t), Some(g)) => Some(t.min(g)),
        (t, g) => t.or(g),
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
}
