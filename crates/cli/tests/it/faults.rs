//! Faults nobody's input causes: the SQLite volume full, read-only or gone under a running
//! server, and upstreams that break off mid-answer. Real volumes (tmpfs, a loop-mounted ext4
//! image; these need root, see `root_or_skip`) and real loopback upstreams; no timing
//! assertions (the test client's timeout is the bound for "no hang").

mod upstreams;
mod volumes;
