//! umdev end to end: disk images as block devices with partitions
//! (`umdevmbr`), RAM disks, the null and trivhd character devices, made in
//! a view by any user and used by the real tools (`sfdisk`, `fdisk`,
//! `mkfs.*`, `blockdev`, `addpart`/`delpart`, `dd`), then checked outside
//! the view on the image itself (`sfdisk -d`, `e2fsck -fn`, `fsck.fat -n`,
//! `debugfs`, mtools) or against the same tools run natively.

use std::path::Path;

use viewos_tests::{quote_path as q, run_native as run, view_command, Cmd, Mode, Outcome, TempDir};

const BLKOPS: &str = include_str!("../fixtures/blkops.py");

/// Runs `script` in a view with umdev and umfuse, with `$VM`, `$VU` and
/// `$OPS` naming viewmount, viewumount and the blkops fixture.
fn view(t: &TempDir, script: &str) -> Outcome {
    let ops = t.write("blkops.py", BLKOPS);
    let full = format!(
        "VM={vm}; VU={vu}; OPS='/usr/bin/python3 {ops}'; cd {d}; {script}",
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
        ops = q(&ops),
        d = q(t.path()),
    );
    Cmd::bash(&full)
        .umview_opts(["-p", "umdev", "-p", "umfuse"])
        .timeout(std::time::Duration::from_secs(120))
        .run(Mode::View)
}

fn random_bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The partitions `sfdisk -d` lists for `img`: (number, start, size) in
/// sectors.
fn table_of(img: &Path) -> Vec<(u32, u64, u64)> {
    let out = run(&["/usr/sbin/sfdisk", "-d", &img.to_string_lossy()]);
    assert!(out.status.success(), "sfdisk -d: {}", text(&out));
    let name = img.to_string_lossy().into_owned();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (dev, rest) = l.split_once(" : ")?;
            let number = dev.trim().strip_prefix(&name)?.parse().ok()?;
            let field = |k: &str| -> Option<u64> {
                rest.split(',')
                    .find_map(|f| f.trim().strip_prefix(k))?
                    .trim()
                    .parse()
                    .ok()
            };
            Some((number, field("start=")?, field("size=")?))
        })
        .collect()
}

/// `sfdisk -d` of `img` without what differs from one run to another
/// (the disk identifier, GPT UUIDs) and the device names.
fn dump_shape(img: &Path) -> String {
    let out = run(&["/usr/sbin/sfdisk", "-d", &img.to_string_lossy()]);
    assert!(out.status.success(), "sfdisk -d: {}", text(&out));
    let name = img.to_string_lossy().into_owned();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("label-id:") && !l.starts_with("device:"))
        .map(|l| {
            let l = l.replacen(&name, "DISK", 1);
            l.split(", ")
                .filter(|f| !f.starts_with("uuid="))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The seeds' session for real: an empty image becomes a disk in the view,
/// `sfdisk` makes two partitions, `mkfs.ext3` and `mkfs.vfat` format them,
/// um-fuse mounts them (`umfuseext3`, which runs fuse2fs on the virtual
/// partition, and `umfusefat`), files go in; after the view the image has
/// the table sfdisk makes on a plain file and two clean file systems with
/// the files.
#[test]
fn the_seed_session_partitions_formats_and_fills_an_image() {
    let t = TempDir::new("umdev-seed");
    let data = random_bytes(1_500_000, 1);
    t.write("rand", &data);
    let layout = "label: dos\n,24M,83\n,,c\n";
    t.write("layout", layout);
    let out = view(
        &t,
        "set -e; truncate -s 64M disk.img; $VM -t umdevmbr disk.img /dev/hda; \
         ls -d /dev/hda*; /usr/sbin/sfdisk -q /dev/hda < layout; ls /dev | grep '^hda'; \
         stat -c '%n %F %t:%T %s' /dev/hda /dev/hda1 /dev/hda2; \
         /usr/sbin/mkfs.ext3 -q /dev/hda1; /usr/sbin/mkfs.vfat /dev/hda2 >/dev/null; \
         mkdir m1 m2; $VM -t umfuseext3 -o rw+ /dev/hda1 m1; $VM -t umfusefat /dev/hda2 m2; \
         cp rand m1/rand; echo ext3 > m1/hello; cp rand m2/RAND.BIN; echo fat > m2/HELLO.TXT; \
         cmp rand m1/rand; cmp rand m2/RAND.BIN; ls m1 m2; \
         $VU m1; $VU m2; $VU /dev/hda; ls /dev | grep -c '^hda' || true",
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        "/dev/hda\nhda\nhda1\nhda2\n\
         /dev/hda block special file 3:0 0\n/dev/hda1 block special file 3:1 0\n\
         /dev/hda2 block special file 3:2 0\n\
         m1:\nhello\nlost+found\nrand\n\nm2:\nHELLO.TXT\nRAND.BIN\n0\n",
        "{}",
        out.dump()
    );
    // The table is the one sfdisk makes on a plain file of that size.
    let img = t.join("disk.img");
    let native = t.join("native.img");
    assert!(run(&["truncate", "-s", "64M", &native.to_string_lossy()])
        .status
        .success());
    let made = Cmd::new(["/usr/sbin/sfdisk", "-q", &native.to_string_lossy()])
        .stdin(layout)
        .run(Mode::Native);
    made.assert_ok();
    assert_eq!(dump_shape(&img), dump_shape(&native));
    let parts = table_of(&img);
    assert_eq!(parts.len(), 2, "{parts:?}");
    let (p1, p2) = (parts[0], parts[1]);
    // The ext3 file system: clean, with the files.
    let ext = format!("{}?offset={}", img.to_string_lossy(), p1.1 * 512);
    let fsck = run(&["/usr/sbin/e2fsck", "-fn", &ext]);
    assert!(fsck.status.success(), "e2fsck -fn: {}", text(&fsck));
    let rand = run(&["/usr/sbin/debugfs", "-R", "cat /rand", &ext]);
    assert!(rand.stdout == data, "ext3 rand differs");
    let hello = run(&["/usr/sbin/debugfs", "-R", "cat /hello", &ext]);
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "ext3\n");
    let fs_type = run(&["/usr/sbin/dumpe2fs", "-h", &ext]);
    assert!(
        String::from_utf8_lossy(&fs_type.stdout).contains("has_journal"),
        "not ext3: {}",
        text(&fs_type)
    );
    // The FAT file system, cut out of the image.
    let fat = t.join("p2.img");
    let cut = run(&[
        "dd",
        &format!("if={}", img.to_string_lossy()),
        &format!("of={}", fat.to_string_lossy()),
        "bs=512",
        &format!("skip={}", p2.1),
        &format!("count={}", p2.2),
        "status=none",
    ]);
    assert!(cut.status.success(), "dd: {}", text(&cut));
    let fsck = run(&["/usr/sbin/fsck.fat", "-n", &fat.to_string_lossy()]);
    assert!(fsck.status.success(), "fsck.fat -n: {}", text(&fsck));
    let fat_s = fat.to_string_lossy().into_owned();
    let rand = run(&["mtype", "-i", &fat_s, "::RAND.BIN"]);
    assert!(rand.stdout == data, "FAT RAND.BIN differs");
    let hello = run(&["mtype", "-i", &fat_s, "::HELLO.TXT"]);
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "fat\n");
}

/// Each node's size as `blockdev --getsz` reports it, for every node of
/// `disk` the view lists.
const SIZES: &str =
    "for n in disk disk[0-9]*; do [ -e $n ] && echo $n $(/usr/sbin/blockdev --getsz $n); done";

/// What [`SIZES`] should print for the table `sfdisk -d` reads outside:
/// an extended partition shows as two sectors, as the kernel shows it.
fn sizes_of(img: &Path, disk_sectors: u64, extended: &[u32]) -> String {
    let mut s = format!("disk {disk_sectors}\n");
    let mut parts = table_of(img);
    parts.sort_by_key(|p| p.0.to_string());
    for (n, _, size) in parts {
        let size = if extended.contains(&n) { 2 } else { size };
        s.push_str(&format!("disk{n} {size}\n"));
    }
    s
}

/// GPT and MBR tables (primary, extended and logical partitions) written
/// by sfdisk and fdisk in the view: the nodes and their sizes follow each
/// new table, as `sfdisk -d` reads it on the image outside.
#[test]
fn partition_nodes_follow_gpt_and_mbr_tables() {
    let t = TempDir::new("umdev-tables");
    let img = t.join("disk.img");
    assert!(run(&["truncate", "-s", "100M", &img.to_string_lossy()])
        .status
        .success());
    let sectors = 100 * 2048;
    let steps: [(&str, &str, &[u32]); 3] = [
        ("gpt", "label: gpt\n,10M\n,20M\n,\n", &[]),
        (
            "mbr with logical partitions",
            "label: dos\n,10M,83\n,,5\n,20M,83\n,30M,82\n,,83\n",
            &[2],
        ),
        ("fdisk deleting logical 5", "", &[2]),
    ];
    for (what, layout, extended) in steps {
        let tool = if layout.is_empty() {
            // fdisk renumbers the logical partitions after 5.
            "printf 'd\\n5\\nw\\n' | /usr/sbin/fdisk disk >/dev/null".to_string()
        } else {
            t.write("layout", layout);
            "/usr/sbin/sfdisk -q disk < layout".to_string()
        };
        let out = view(
            &t,
            &format!("set -e; $VM -t umdevmbr disk.img disk; {tool}; {SIZES}"),
        );
        out.assert_ok();
        assert_eq!(
            out.out(),
            sizes_of(&img, sectors, extended),
            "{what}: {}",
            out.dump()
        );
    }
    // The last step left 1, 2 (extended), 5 and 6.
    let numbers: Vec<u32> = table_of(&img).iter().map(|p| p.0).collect();
    assert_eq!(numbers, vec![1, 2, 5, 6]);
}

/// BLKPG through the real addpart and delpart: partitions come and go in
/// the view without the table changing; overlaps are refused (EBUSY) and
/// a table re-read brings the table's partitions back.
#[test]
fn blkpg_adds_and_removes_partitions() {
    let t = TempDir::new("umdev-blkpg");
    let img = t.join("disk.img");
    assert!(run(&["truncate", "-s", "32M", &img.to_string_lossy()])
        .status
        .success());
    let made = Cmd::new(["/usr/sbin/sfdisk", "-q", &img.to_string_lossy()])
        .stdin("label: dos\n2048,8192,83\n10240,8192,83\n")
        .run(Mode::Native);
    made.assert_ok();
    let before = std::fs::read(&img).expect("image");
    let out = view(
        &t,
        &format!(
            "$VM -t umdevmbr disk.img disk || exit 1; {SIZES}; echo -; \
             delpart disk 1; {SIZES}; echo -; \
             addpart disk 7 20480 4096; {SIZES}; echo -; \
             addpart disk 8 12000 100 2>&1 | sed 's/.*: //'; \
             addpart disk 7 30000 100 2>&1 | sed 's/.*: //'; \
             delpart disk 9 2>&1 | sed 's/.*: //'; \
             /usr/sbin/blockdev --rereadpt disk; {SIZES}"
        ),
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        "disk 65536\ndisk1 8192\ndisk2 8192\n-\n\
         disk 65536\ndisk2 8192\n-\n\
         disk 65536\ndisk2 8192\ndisk7 4096\n-\n\
         Device or resource busy\nDevice or resource busy\nNo such device or address\n\
         disk 65536\ndisk1 8192\ndisk2 8192\n",
        "{}",
        out.dump()
    );
    assert!(
        std::fs::read(&img).expect("image") == before,
        "the image changed"
    );
}

/// While a partition is open the table is not re-read (`EBUSY`): sfdisk
/// writes a new table but says the kernel still uses the old one, and the
/// nodes stay as they were until the partition is closed and the table
/// re-read, as with a real disk in use. `O_EXCL` opens claim a disk or a
/// partition against each other.
#[test]
fn a_disk_in_use_keeps_its_partitions() {
    let t = TempDir::new("umdev-busy");
    let img = t.join("disk.img");
    assert!(run(&["truncate", "-s", "16M", &img.to_string_lossy()])
        .status
        .success());
    t.write("two", "label: dos\n,4M,83\n,4M,83\n");
    t.write("three", "label: dos\n,2M,83\n,2M,83\n,2M,83\n");
    let out = view(
        &t,
        &format!(
            "set -e; $VM -t umdevmbr disk.img disk; /usr/sbin/sfdisk -q disk < two; \
             exec 3<disk1; \
             /usr/sbin/blockdev --rereadpt disk 2>&1 | sed 's/.*: //'; \
             /usr/sbin/sfdisk disk < three > sfdisk.out 2>&1 || true; \
             grep -o 'Re-reading the partition table failed.: Device or resource busy' sfdisk.out; \
             {SIZES}; \
             $OPS open disk ro+excl -- open disk1 ro+excl -- open disk2 ro+excl; \
             exec 3<&-; /usr/sbin/blockdev --rereadpt disk && echo reread; {SIZES}; \
             $OPS open disk1 ro+excl -- open disk ro+excl -- open disk2 ro+excl"
        ),
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        "Device or resource busy\n\
         Re-reading the partition table failed.: Device or resource busy\n\
         disk 32768\ndisk1 8192\ndisk2 8192\n\
         open disk ro+excl -> ok\nopen disk1 ro+excl -> EBUSY\nopen disk2 ro+excl -> EBUSY\n\
         reread\ndisk 32768\ndisk1 4096\ndisk2 4096\ndisk3 4096\n\
         open disk1 ro+excl -> ok\nopen disk ro+excl -> EBUSY\nopen disk2 ro+excl -> ok\n",
        "{}",
        out.dump()
    );
}

/// A RAM disk as in the seeds: `mkfs.ext2` on it and um-fuse mounts it;
/// with `mbr` it takes partitions. e2fsck, run in the view on the virtual
/// device, finds it clean.
#[test]
fn ramdisks_take_file_systems_and_partitions() {
    let t = TempDir::new("umdev-ram");
    let data = random_bytes(3_000_000, 2);
    t.write("rand", &data);
    t.write("layout", "label: dos\n,20M,83\n,,c\n");
    let out = view(
        &t,
        "set -e; $VM -t umdevramdisk -o size=100M none rd; /usr/sbin/blockdev --getsize64 rd; \
         /usr/sbin/mkfs.ext2 -q rd; mkdir mnt; $VM -t umfuseext2 -o rw+ rd mnt; \
         cp rand mnt/; mkdir mnt/d; echo hi > mnt/d/f; $VU mnt; \
         $VM -t umfuseext2 -o rw+ rd mnt; cmp rand mnt/rand; cat mnt/d/f; $VU mnt; \
         /usr/sbin/e2fsck -fn rd >/dev/null 2>&1 && echo clean; \
         /usr/sbin/blockdev --rereadpt rd 2>&1 | sed 's/.*: //'; \
         $VM -t umdevramdisk -o size=64M,mbr none ram; /usr/sbin/sfdisk -q ram < layout; \
         ls -d ram*; /usr/sbin/mkfs.vfat ram2 >/dev/null; $VM -t umfusefat ram2 mnt; \
         cp rand mnt/R.BIN; $VU mnt; $VM -t umfusefat ram2 mnt; cmp rand mnt/R.BIN && echo same; \
         $VU mnt; /usr/sbin/fsck.fat -n ram2 >/dev/null && echo fat clean",
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        "104857600\nhi\nclean\nInvalid argument\nram\nram1\nram2\nsame\nfat clean\n",
        "{}",
        out.dump()
    );
}

/// The seeds' test devices: a null device that logs each request with
/// `-o debug`, and a 64 KiB RAM character device that `dd` fills until
/// `ENOSPC` and reads back.
#[test]
fn null_and_trivhd_as_in_the_seed() {
    let t = TempDir::new("umdev-char");
    let data = random_bytes(100 * 1024, 3);
    t.write("data", &data);
    let out = view(
        &t,
        "set -e; $VM -t umdevnull -o debug none null; ls -l null | cut -c1-10; \
         stat -c '%F %t:%T' null; dd if=/dev/urandom of=null bs=4096 count=3 status=none; \
         dd if=null bs=4096 status=none | wc -c; \
         $VM -t umdevtrivhd none chardev; stat -c '%F %t:%T %s' chardev; \
         if dd if=data of=chardev 2>dd1.err; then echo wrote all; fi; cat dd1.err | grep -v copied; \
         dd if=chardev of=content 2>&1 | grep -v copied; \
         [ \"$(cat chardev | md5sum)\" = \"$(md5sum < content)\" ] && echo same sums",
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        "crw-rw-rw-\ncharacter special file 1:3\n0\n\
         character special file 3c:0 0\n\
         dd: writing to 'chardev': No space left on device\n\
         129+0 records in\n128+0 records out\n\
         128+0 records in\n128+0 records out\nsame sums\n",
        "{}",
        out.dump()
    );
    let content = std::fs::read(t.join("content")).expect("content");
    assert!(content == data[..64 * 1024], "trivhd content differs");
    // The debug lines: the open, three writes of 4096 bytes, the release,
    // then the reader's open, one read at the end, its release.
    let log: Vec<String> = out
        .err()
        .lines()
        .filter(|l| l.starts_with("null_"))
        .map(|l| l.split(" -> ").next().unwrap_or(l).to_string())
        .collect();
    let writes = log
        .iter()
        .filter(|l| l.starts_with("null_write c 1 3 len 4096"))
        .count();
    assert_eq!(writes, 3, "{log:?}");
    assert!(log[0].starts_with("null_open c 1 3 flag "), "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("null_release c 1 3"))
            .count(),
        2,
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("null_read c 1 3 len 4096")),
        "{log:?}"
    );
}

/// What a disk answers at its edges and to bad requests, as the kernel
/// answers for a block device.
#[test]
fn device_edges_and_ioctls() {
    let t = TempDir::new("umdev-edges");
    let img = t.join("disk.img");
    // 10 MiB and 100 bytes: the odd bytes are no sector of the disk.
    let tail = b"not a sector: never read nor written by the disk, 100 bytes long...............................";
    let mut bytes = vec![0u8; 10 << 20];
    bytes.extend_from_slice(tail);
    std::fs::write(&img, &bytes).expect("image");
    let end = 10u64 << 20;
    let out = view(
        &t,
        &format!(
            "$VM -t umdevmbr disk.img disk || exit 1; \
             $OPS size disk -- getsize64 disk -- pread disk {a} 512 -- pread disk {end} 512 \
             -- pwrite disk {a} 1024 -- pwrite disk {end} 1 -- pwrite disk {b} 1 \
             -- ioctl disk 0x5331 -- ioctl disk 0x80081272 16 -- ioctl disk 0x125f \
             -- ioctl disk 0x127c 8; \
             /usr/sbin/sfdisk -g disk; stat -c %s disk",
            a = end - 512,
            b = end + 4096,
        ),
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!(
            "size disk -> {end}\ngetsize64 disk -> {end}\npread disk {a} 512 -> 512\n\
             pread disk {end} 512 -> 0\npwrite disk {a} 1024 -> 512\n\
             pwrite disk {end} 1 -> ENOSPC\npwrite disk {b} 1 -> ENOSPC\n\
             ioctl disk 0x5331 -> ENOTTY\nioctl disk 0x80081272 16 -> EFAULT\n\
             ioctl disk 0x125f -> 0\nioctl disk 0x127c 8 -> EFAULT\n\
             disk: 1 cylinders, 255 heads, 63 sectors/track\n0\n",
            a = end - 512,
            b = end + 4096,
        ),
        "{}",
        out.dump()
    );
    let after = std::fs::read(&img).expect("image");
    assert_eq!(after.len(), bytes.len(), "the image grew or shrank");
    assert_eq!(&after[end as usize..], tail, "bytes past the disk changed");
    assert!(after[end as usize - 512..end as usize]
        .iter()
        .all(|&b| b == 0xa5));
}

/// Tables that promise more than the image holds, overlapping partitions
/// and an image that shrinks under the disk: partitions are cut or left
/// out as the kernel does, I/O past the end is `ENOSPC` or 0 bytes, a
/// missing end is `EIO`, and nothing is written outside the image.
#[test]
fn short_images_and_overlapping_partitions() {
    let t = TempDir::new("umdev-short");
    let img = t.join("disk.img");
    let img_s = img.to_string_lossy().into_owned();
    assert!(run(&["truncate", "-s", "200M", &img_s]).status.success());
    let made = Cmd::new(["/usr/sbin/sfdisk", "-q", &img_s])
        .stdin("label: dos\nstart=2048,size=40M,type=83\nstart=83968,size=60M,type=83\nstart=235520,size=20M,type=83\n")
        .run(Mode::Native);
    made.assert_ok();
    assert!(run(&["truncate", "-s", "64M", &img_s]).status.success());
    // Partition 2 is cut at the end (131072 - 83968 sectors), 3 starts
    // past it and is left out.
    let p2_end = (131_072 - 83_968) * 512u64;
    let out = view(
        &t,
        &format!(
            "$VM -t umdevmbr disk.img disk || exit 1; {SIZES}; \
             $OPS pwrite disk2 {last} 1024 -- pwrite disk2 {p2_end} 1 -- pread disk2 {p2_end} 1; \
             truncate -s 1M disk.img; \
             dd if=disk of=/dev/null bs=1M 2>&1 | grep -o 'Input/output error'; \
             $OPS pread disk 2097152 512 -- pread disk 0 512",
            last = p2_end - 512,
        ),
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!(
            "disk 131072\ndisk1 81920\ndisk2 {}\n\
             pwrite disk2 {last} 1024 -> 512\npwrite disk2 {p2_end} 1 -> ENOSPC\n\
             pread disk2 {p2_end} 1 -> 0\nInput/output error\n\
             pread disk 2097152 512 -> EIO\npread disk 0 512 -> 512\n",
            131_072 - 83_968,
            last = p2_end - 512,
        ),
        "{}",
        out.dump()
    );
    assert_eq!(std::fs::metadata(&img).expect("image").len(), 1 << 20);

    // Overlapping partitions in a hand-made table: both are there, as
    // the kernel has them; a BLKPG add over them is refused.
    let mut mbr = vec![0u8; 16 << 20];
    for (i, (start, size)) in [(2048u32, 8192u32), (4096, 8192)].iter().enumerate() {
        let at = 0x1be + 16 * i;
        mbr[at + 4] = 0x83;
        mbr[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        mbr[at + 12..at + 16].copy_from_slice(&size.to_le_bytes());
    }
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    std::fs::write(&img, &mbr).expect("image");
    let out = view(
        &t,
        &format!(
            "$VM -t umdevmbr disk.img disk || exit 1; {SIZES}; \
             addpart disk 3 6144 100 2>&1 | sed 's/.*: //'"
        ),
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        "disk 32768\ndisk1 8192\ndisk2 8192\nDevice or resource busy\n",
        "{}",
        out.dump()
    );
}

/// Read-only disks: `-o ro`, or an image the view cannot write (here one
/// inside a read-only ISO 9660 mount, unwritable for root too) opens
/// read-only, and writes are `EPERM` as on the kernel's read-only block
/// devices; `-o rw` on it fails the mount with `EROFS`. Bad sizes and
/// sources fail the mount.
#[test]
fn read_only_images_and_bad_mounts() {
    let t = TempDir::new("umdev-ro");
    let tree = t.mkdir("tree");
    let img = tree.join("disk.img");
    assert!(run(&["truncate", "-s", "8M", &img.to_string_lossy()])
        .status
        .success());
    let made = Cmd::new(["/usr/sbin/sfdisk", "-q", &img.to_string_lossy()])
        .stdin("label: dos\n,4M,83\n")
        .run(Mode::Native);
    made.assert_ok();
    let before = std::fs::read(&img).expect("image");
    let iso = t.join("disk.iso");
    let out = run(&[
        "xorriso",
        "-as",
        "mkisofs",
        "-quiet",
        "-R",
        "-o",
        &iso.to_string_lossy(),
        &tree.to_string_lossy(),
    ]);
    assert!(out.status.success(), "xorriso: {}", text(&out));
    let err = "2>&1 | sed 's/.*: //'";
    let out = view(
        &t,
        &format!(
            "mkdir iso; $VM -t umfuseiso9660 disk.iso iso || exit 1; \
             $VM -t umdevmbr -o rw iso/disk.img a {err}; \
             $VM -t umdevmbr iso/disk.img b; /usr/sbin/blockdev --getro b; \
             $OPS pwrite b1 0 512 -- pread b1 0 512; \
             $VM -t umdevmbr -o ro tree/disk.img c; /usr/sbin/blockdev --getro c c1; \
             $OPS pwrite c 0 1 -- pwrite c1 0 1; \
             $VM -t umdevmbr tree/disk.img d; /usr/sbin/blockdev --setro d1; \
             /usr/sbin/blockdev --getro d d1; $OPS pwrite d1 0 1; \
             /usr/sbin/blockdev --setrw d1; /usr/sbin/blockdev --getro d1; \
             $VM -t umdevramdisk -o size=1000 none r1 {err}; \
             $VM -t umdevramdisk none r2 {err}; \
             $VM -t umdevmbr -o size=1M tree/disk.img e {err}; \
             $VM -t umdevmbr missing.img f {err}; \
             $VM -t umdevmbr tree g {err}; \
             $VM -t umdevfloppy none h {err}"
        ),
    );
    out.assert_ok();
    assert_eq!(
        out.out(),
        "Read-only file system (os error 30)\n1\n\
         pwrite b1 0 512 -> EPERM\npread b1 0 512 -> 512\n1\n1\n\
         pwrite c 0 1 -> EPERM\npwrite c1 0 1 -> EPERM\n\
         0\n1\npwrite d1 0 1 -> EPERM\n0\n\
         Invalid argument (os error 22)\nInvalid argument (os error 22)\n\
         Invalid argument (os error 22)\nNo such file or directory (os error 2)\n\
         Block device required (os error 15)\n\
         No such device (os error 19) (no service of the view handles this type)\n",
        "{}",
        out.dump()
    );
    assert!(
        std::fs::read(&img).expect("image") == before,
        "a read-only image changed"
    );
}

/// `-p umdev,type=...,source=...,target=...` makes devices when the view
/// starts, as mount would.
#[test]
fn devices_made_at_start() {
    let t = TempDir::new("umdev-preload");
    let img = t.join("disk.img");
    assert!(run(&["truncate", "-s", "8M", &img.to_string_lossy()])
        .status
        .success());
    let made = Cmd::new(["/usr/sbin/sfdisk", "-q", &img.to_string_lossy()])
        .stdin("label: gpt\n,2M\n,2M\n")
        .run(Mode::Native);
    made.assert_ok();
    let spec = format!(
        "umdev,type=umdevmbr,source={img},target={d}/hd,ro;type=umdevnull,source=none,target={d}/null",
        img = img.to_string_lossy(),
        d = t.path().to_string_lossy(),
    );
    let script = format!(
        "cd {}; stat -c '%n %F %t:%T' hd* null; /usr/sbin/blockdev --getro --getsz hd2",
        q(t.path())
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", &spec])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "hd block special file 3:0\nhd1 block special file 3:1\nhd2 block special file 3:2\n\
         null character special file 1:3\n1\n4096\n",
        "{}",
        out.dump()
    );
}

/// A child process this test started, killed and waited for when dropped,
/// whatever happens to the test.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A program in the view opens the virtual `/dev/net/tun` of `umdevtap`,
/// makes a TAP interface and sends a frame: it comes out of a real VDE
/// switch (read by `vde_plug` on another port), and the answer sent back
/// through the switch is read from the tap fd (with select waiting for
/// it). Before `TUNSETIFF`, and for what a VDE port cannot carry, the
/// kernel's errors.
#[test]
fn tap_frames_cross_a_vde_switch() {
    use std::io::{Read, Write};
    let switch_bin = viewos_tests::require_tool("vde_switch", "vde2");
    let plug_bin = viewos_tests::require_tool("vde_plug", "vde2");
    let t = std::sync::Arc::new(TempDir::new("umdev-tap"));
    let sw = t.join("sw");
    // In the foreground, its console on a pipe of ours: it ends when the
    // test drops it (or at the pipe's end, if the test dies).
    let _switch = Child(
        std::process::Command::new(&switch_bin)
            .arg("-s")
            .arg(&sw)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("vde_switch"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sw.join("ctl").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "vde_switch did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut plug = Child(
        std::process::Command::new(&plug_bin)
            .arg(&sw)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("vde_plug"),
    );
    let mut plug_out = plug.0.stdout.take().expect("stdout");
    let mut plug_in = plug.0.stdin.take().expect("stdin");
    // The first frame the other port sees, with vde_plug's framing (a
    // 16-bit big-endian length, then the frame).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut len = [0u8; 2];
        let mut frame = Vec::new();
        if plug_out.read_exact(&mut len).is_ok() {
            frame = vec![0u8; u16::from_be_bytes(len) as usize];
            let _ = plug_out.read_exact(&mut frame);
        }
        let _ = tx.send(frame);
    });
    t.write("tap_ping.py", include_str!("../fixtures/tap_ping.py"));
    let script = format!(
        "$VM -t umdevtap -o vde={sw} none tun || exit 1; stat -c '%F %t:%T %A' tun; \
         /usr/bin/python3 tap_ping.py tun",
        sw = q(&sw)
    );
    let view_t = {
        let t = t.clone();
        std::thread::spawn(move || view(&t, &script))
    };
    let frame = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("a frame on the switch");
    assert!(frame.len() >= 14 + 13, "short frame {frame:?}");
    assert_eq!(&frame[..6], &[0xff; 6], "broadcast");
    assert_eq!(&frame[6..12], &[2, 0, 0, 0, 0, 0x11], "the view's source");
    assert_eq!(&frame[14..27], b"from the view");
    let mut reply = frame[6..12].to_vec();
    reply.extend_from_slice(&[2, 0, 0, 0, 0, 0x22, 0x88, 0xb5]);
    reply.extend_from_slice(b"from the switch");
    reply.resize(60, 0);
    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&reply);
    plug_in.write_all(&framed).expect("to vde_plug");
    plug_in.flush().expect("to vde_plug");
    let out = view_t.join().expect("view thread");
    drop(plug);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "character special file a:c8 crw-rw-rw-\n\
         write before TUNSETIFF: EBADFD\nTUNGETIFF before: EBADFD\nIFF_TUN: EINVAL\n\
         name: tap0\nTUNGETIFF: tap0 0x1002\nshort frame: EINVAL\n\
         received: from the switch for 020000000011 from 020000000022\n",
        "{}",
        out.dump()
    );
}

/// A partition's bytes are moved straight between the image and the
/// program: every kind of read and write (offsets, the device's end, dup,
/// fork, a child that closes every fd, exec, threads, bad buffers, access
/// modes) answers as the kernel would and lands in the image.
#[test]
fn partitions_move_bytes_straight_to_and_from_the_image() {
    const DIRECT_IO: &str = include_str!("../fixtures/direct_io.py");
    let t = TempDir::new("umdev-direct");
    let img = t.write("disk.img", random_bytes(8 << 20, 11));
    let script = t.write("direct_io.py", DIRECT_IO);
    let out = run(&[
        "/bin/sh",
        "-c",
        &format!(
            "printf 'label: dos\\n2048,8192,83\\n' | /usr/sbin/sfdisk -q {}",
            q(&img)
        ),
    ]);
    assert!(out.status.success(), "sfdisk: {}", text(&out));
    let out = view(
        &t,
        &format!(
            "set -e; mkdir hd; $VM -t umdevmbr disk.img hd; \
             /usr/bin/python3 {} hd1 {} {} {}",
            q(&script),
            q(&img),
            2048 * 512,
            8192 * 512
        ),
    );
    out.assert_ok();
    let oks = out.out().lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(oks, 27, "{}", out.dump());
}
