//! Fuzz target `partition_table`: um-dev's MBR (primary, extended and
//! logical partitions) and GPT parsing of a disk image.
//!
//! The input is the disk: its bytes, in 512-byte sectors (a last partial
//! sector is padded with zeros). The table is read twice: from a disk of
//! exactly those sectors, and from one that claims 2^40 sectors more
//! (zeros after the input), where tables may point anywhere. Parsing must
//! end (a cyclic chain of logical partitions, huge entry counts) and must
//! not panic; no partition number may come twice, and the partitions the
//! kernel would add must lie on the disk and be numbered 1 to 255.

#![no_main]

use libfuzzer_sys::fuzz_target;
use um_dev::table::{self, Sectors, MAX_PARTITION, SECTOR};
use viewos_core::Errno;

fn check(data: &[u8], count: u64) {
    let read = |offset: u64, buf: &mut [u8]| -> Result<(), Errno> {
        buf.fill(0);
        let Ok(start) = usize::try_from(offset) else {
            return Ok(());
        };
        if let Some(src) = data.get(start..) {
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
        }
        Ok(())
    };
    let sectors = Sectors::new(&read, count);
    let Ok(entries) = table::scan(&sectors) else {
        return;
    };
    let mut numbers: Vec<u32> = entries.iter().map(|e| e.number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        entries.len(),
        "a partition number given twice"
    );
    for (number, e) in table::fit(&entries, count) {
        assert!((1..=MAX_PARTITION).contains(&number));
        assert!(e.len > 0);
        let end = e.start.checked_add(e.len).expect("an extent past 2^64");
        assert!(
            end <= count * SECTOR,
            "partition {number} ends past the disk"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let count = (data.len() as u64).div_ceil(SECTOR);
    check(data, count);
    check(data, count + (1 << 40));
});
