//! Layer tars with full metadata, beside [`super::Entry`]: per-entry mode
//! (setuid, setgid, sticky), owner, mtime and PAX xattrs
//! (`SCHILY.xattr.NAME`), and every entry type a root filesystem has (fifos,
//! devices, hard links, whiteout markers as the empty files they are).

/// What an entry is.
#[derive(Debug, Clone)]
pub enum What {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A hard link to an earlier entry of the same tar (its path).
    HardLink(String),
    Fifo,
    Char(u32, u32),
}

/// One tar entry with all its metadata.
#[derive(Debug, Clone)]
pub struct MetaEntry {
    pub path: String,
    pub what: What,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl MetaEntry {
    fn new(path: &str, what: What, mode: u32, mtime: u64) -> Self {
        MetaEntry {
            path: path.into(),
            what,
            mode,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: vec![],
        }
    }

    pub fn dir(path: &str, mode: u32, mtime: u64) -> Self {
        Self::new(path, What::Dir, mode, mtime)
    }

    pub fn file(path: &str, mode: u32, mtime: u64, data: &[u8]) -> Self {
        Self::new(path, What::File(data.to_vec()), mode, mtime)
    }

    pub fn symlink(path: &str, target: &str, mtime: u64) -> Self {
        Self::new(path, What::Symlink(target.into()), 0o777, mtime)
    }

    /// A hard link; give it the mode, owner and mtime of its target, as tar
    /// writers do (they are one inode).
    pub fn hardlink(path: &str, target: &str, mode: u32, mtime: u64) -> Self {
        Self::new(path, What::HardLink(target.into()), mode, mtime)
    }

    pub fn fifo(path: &str, mode: u32, mtime: u64) -> Self {
        Self::new(path, What::Fifo, mode, mtime)
    }

    pub fn char_device(path: &str, (major, minor): (u32, u32), mode: u32, mtime: u64) -> Self {
        Self::new(path, What::Char(major, minor), mode, mtime)
    }

    /// The whiteout `DIR/.wh.NAME` hiding `DIR/NAME` of lower layers.
    pub fn whiteout(hidden: &str, mtime: u64) -> Self {
        let (dir, name) = match hidden.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n),
            None => (String::new(), hidden),
        };
        Self::file(&format!("{dir}.wh.{name}"), 0o644, mtime, b"")
    }

    /// The opaque marker `DIR/.wh..wh..opq`: DIR hides what lower layers put in it.
    pub fn opaque(dir: &str, mtime: u64) -> Self {
        Self::file(&format!("{dir}/.wh..wh..opq"), 0o644, mtime, b"")
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn xattr(mut self, name: &str, value: &[u8]) -> Self {
        self.xattrs.push((name.into(), value.to_vec()));
        self
    }
}

/// One PAX record: `"<len> <key>=<value>\n"`, the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    assert_eq!(r.len(), len);
    r
}

/// The raw bytes of a tar holding `entries` in order; xattrs go into a PAX
/// extended header (`x`) before their entry.
pub fn meta_tar(entries: &[MetaEntry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.xattrs.is_empty() {
            let mut data = vec![];
            for (k, v) in &e.xattrs {
                data.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
            }
            let mut x = tar::Header::new_ustar();
            x.set_entry_type(tar::EntryType::XHeader);
            let base = e.path.trim_end_matches('/').rsplit('/').next().unwrap();
            x.set_path(format!("PaxHeaders.0/{base}")).unwrap();
            x.set_mode(0o644);
            x.set_uid(0);
            x.set_gid(0);
            x.set_mtime(e.mtime);
            x.set_size(data.len() as u64);
            x.set_cksum();
            b.append(&x, data.as_slice()).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(0);
        match &e.what {
            What::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, &e.path, std::io::empty()).unwrap();
            }
            What::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &e.path, data.as_slice()).unwrap();
            }
            What::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, &e.path, target).unwrap();
            }
            What::HardLink(target) => {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, &e.path, target).unwrap();
            }
            What::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_device_major(0).unwrap();
                h.set_device_minor(0).unwrap();
                b.append_data(&mut h, &e.path, std::io::empty()).unwrap();
            }
            What::Char(major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                b.append_data(&mut h, &e.path, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Writes an OCI layout at `dir` with one gzip layer per entry list, tagged
/// `tag` (`org.opencontainers.image.ref.name`, which `umoci unpack --image
/// DIR:TAG` needs); returns the layer digests (hex).
pub fn meta_layout(dir: &std::path::Path, tag: &str, layers: &[Vec<MetaEntry>]) -> Vec<String> {
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| meta_tar(l)).collect();
    super::layout_from_tars(dir, Some(tag), &tars)
}
