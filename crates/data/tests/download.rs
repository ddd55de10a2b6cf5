//! Downloads and the search for MNIST-like files, against a small HTTP server on 127.0.0.1
//! started by each test. Nothing here contacts the internet.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use ferrograd_data::{
    DataError, DataSource, DatasetKind, IDX_FILE_NAMES, IdxImages, RemoteFile, download_file, load,
    load_with_mirrors, sha256_hex, write_idx_images, write_idx_labels,
};

/// What the test server answers for a path.
#[derive(Clone)]
enum Reply {
    Ok(Vec<u8>),
    /// Announces `announced` bytes, sends the body, then closes the connection.
    ShortBody {
        body: Vec<u8>,
        announced: usize,
    },
}

struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

/// Serves `files` (path -> reply) on 127.0.0.1 at a free port, 404 for anything else.
fn serve(files: HashMap<String, Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/mirror/", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            answer(stream, &files, &log);
        }
    });
    Server { base, requests }
}

/// Answers one request, logging its path before replying: the client may check the log as
/// soon as it has the reply.
fn answer(mut stream: TcpStream, files: &HashMap<String, Reply>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    log.lock().unwrap().push(path.clone());
    let (status, body, announced) = match files.get(&path) {
        Some(Reply::Ok(body)) => ("200 OK", body.clone(), body.len()),
        Some(Reply::ShortBody { body, announced }) => ("200 OK", body.clone(), *announced),
        None => ("404 Not Found", b"not found".to_vec(), 9),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {announced}\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

/// A base URL on which nothing listens (connection refused).
fn refused_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/mirror/")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn one_file(name: &str, reply: Reply) -> HashMap<String, Reply> {
    HashMap::from([(format!("/mirror/{name}"), reply)])
}

/// The names in `dir` (empty when it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

const CONTENT: &[u8] = b"synthetic payload, not a real data set";

#[test]
fn downloads_verifies_and_stores_atomically() {
    let server = serve(one_file("f.gz", Reply::Ok(gzip(CONTENT))));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("cache/mnist");
    let sha = sha256_hex(CONTENT);
    let file = RemoteFile {
        name: "f.gz",
        sha256: &sha,
    };
    let path = download_file(&file, &[&server.base], &dest).unwrap();
    assert_eq!(path, dest.join("f.gz"));
    assert_eq!(fs::read(&path).unwrap(), gzip(CONTENT));
    assert_eq!(listing(&dest), vec!["f.gz"]);
}

#[test]
fn plain_content_is_stored_without_gz_suffix() {
    // A server that decompressed in transit: the checksum of the content still matches.
    let server = serve(one_file("f.gz", Reply::Ok(CONTENT.to_vec())));
    let dir = tempfile::tempdir().unwrap();
    let sha = sha256_hex(CONTENT);
    let file = RemoteFile {
        name: "f.gz",
        sha256: &sha,
    };
    let path = download_file(&file, &[&server.base], dir.path()).unwrap();
    assert_eq!(path, dir.path().join("f"));
    assert_eq!(fs::read(&path).unwrap(), CONTENT);
}

#[test]
fn checksum_mismatch_leaves_nothing_behind() {
    let server = serve(one_file("f.gz", Reply::Ok(gzip(b"tampered"))));
    let dir = tempfile::tempdir().unwrap();
    let sha = sha256_hex(CONTENT);
    let file = RemoteFile {
        name: "f.gz",
        sha256: &sha,
    };
    let err = download_file(&file, &[&server.base], dir.path()).unwrap_err();
    let msg = err.to_string();
    match err {
        DataError::Checksum {
            location,
            expected,
            got,
        } => {
            assert_eq!(location, format!("{}f.gz", server.base));
            assert_eq!(expected, sha);
            assert_eq!(got, sha256_hex(b"tampered"));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(msg.contains("SHA-256 mismatch"), "{msg}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn not_found_names_the_url() {
    let server = serve(HashMap::new());
    let dir = tempfile::tempdir().unwrap();
    let file = RemoteFile {
        name: "missing.gz",
        sha256: "00",
    };
    let err = download_file(&file, &[&server.base], dir.path()).unwrap_err();
    let msg = err.to_string();
    match &err {
        DataError::Download { url, msg } => {
            assert_eq!(url, &format!("{}missing.gz", server.base));
            assert!(msg.contains("404"), "{msg}");
        }
        other => panic!("expected a download error, got {other}"),
    }
    assert!(msg.contains("--data-dir"), "{msg}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn connection_refused_names_the_url() {
    let base = refused_base();
    let dir = tempfile::tempdir().unwrap();
    let file = RemoteFile {
        name: "f.gz",
        sha256: "00",
    };
    let err = download_file(&file, &[&base], dir.path()).unwrap_err();
    match &err {
        DataError::Download { url, .. } => assert_eq!(url, &format!("{base}f.gz")),
        other => panic!("expected a download error, got {other}"),
    }
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn broken_transfer_leaves_nothing_behind() {
    let body = gzip(CONTENT);
    let announced = body.len() + 100;
    let server = serve(one_file("f.gz", Reply::ShortBody { body, announced }));
    let dir = tempfile::tempdir().unwrap();
    let sha = sha256_hex(CONTENT);
    let file = RemoteFile {
        name: "f.gz",
        sha256: &sha,
    };
    let err = download_file(&file, &[&server.base], dir.path()).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn second_mirror_is_used_when_the_first_fails() {
    let good = serve(one_file("f.gz", Reply::Ok(gzip(CONTENT))));
    let empty = serve(HashMap::new());
    let dir = tempfile::tempdir().unwrap();
    let sha = sha256_hex(CONTENT);
    let file = RemoteFile {
        name: "f.gz",
        sha256: &sha,
    };
    let refused = refused_base();
    let mirrors = [refused.as_str(), empty.base.as_str(), good.base.as_str()];
    let path = download_file(&file, &mirrors, dir.path()).unwrap();
    assert_eq!(fs::read(path).unwrap(), gzip(CONTENT));
    assert_eq!(*empty.requests.lock().unwrap(), vec!["/mirror/f.gz"]);
    assert_eq!(*good.requests.lock().unwrap(), vec!["/mirror/f.gz"]);

    // When all fail, the error names the last URL and the earlier ones.
    let err = download_file(&file, &[&refused, &empty.base], dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&refused) && msg.contains(&empty.base), "{msg}");
}

/// Writes a small synthetic MNIST-like set: 6 train and 3 test images of 4x4.
fn write_idx_set(dir: &Path, gz: bool) {
    let img = |count: usize| IdxImages {
        count,
        rows: 4,
        cols: 4,
        pixels: (0..count * 16).map(|v| v as u8).collect(),
    };
    write_idx_images(&dir.join(IDX_FILE_NAMES[0]), &img(6), gz).unwrap();
    write_idx_labels(&dir.join(IDX_FILE_NAMES[1]), &[0, 1, 2, 3, 4, 9], gz).unwrap();
    let suffix = if gz { ".gz" } else { "" };
    write_idx_images(
        &dir.join(format!("{}{suffix}", IDX_FILE_NAMES[2])),
        &img(3),
        gz,
    )
    .unwrap();
    write_idx_labels(
        &dir.join(format!("{}{suffix}", IDX_FILE_NAMES[3])),
        &[5, 6, 7],
        gz,
    )
    .unwrap();
}

#[test]
fn idx_files_are_found_in_the_data_dir_subfolder_then_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_set(&dir.path().join("data/fashion-mnist"), true);
    let src = DataSource {
        data_dir: Some(dir.path().join("data")),
        cache_dir: dir.path().join("cache"),
        download: false,
    };
    let (train, test) = load(DatasetKind::FashionMnist, &src).unwrap();
    assert_eq!((train.len(), test.len()), (6, 3));
    assert_eq!((train.height, train.width), (4, 4));
    assert_eq!(train.class_names[0], "T-shirt/top");
    assert_eq!(train.name, "fashion-mnist-train");

    // MNIST is not in the data folder but is in the cache (raw files).
    write_idx_set(&dir.path().join("cache/mnist"), false);
    let (train, _) = load(DatasetKind::Mnist, &src).unwrap();
    assert_eq!(train.labels, vec![0, 1, 2, 3, 4, 9]);
}

#[test]
fn missing_files_without_download_list_files_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let src = DataSource {
        data_dir: Some(dir.path().join("data")),
        cache_dir: dir.path().join("cache"),
        download: false,
    };
    let err = load(DatasetKind::Mnist, &src).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }), "{msg}");
    for name in IDX_FILE_NAMES {
        assert!(msg.contains(name), "{msg}");
    }
    assert!(msg.contains(&dir.path().join("data/mnist").display().to_string()));
    assert!(msg.contains(&dir.path().join("cache/mnist").display().to_string()));
    assert!(!dir.path().join("cache").exists());
}

#[test]
fn load_downloads_into_the_cache_and_verifies() {
    // The local mirror serves synthetic files, which cannot match MNIST's real checksums:
    // the download is attempted, rejected, and leaves the cache empty.
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    write_idx_set(&staging, true);
    let mut files = HashMap::new();
    for name in IDX_FILE_NAMES {
        let bytes = fs::read(staging.join(name))
            .unwrap_or_else(|_| fs::read(staging.join(format!("{name}.gz"))).unwrap());
        files.insert(format!("/mirror/{name}.gz"), Reply::Ok(bytes));
    }
    let server = serve(files);
    let src = DataSource {
        data_dir: None,
        cache_dir: tmp.path().join("cache"),
        download: true,
    };
    let err = load_with_mirrors(DatasetKind::Mnist, &src, &[&server.base]).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("train-images-idx3-ubyte.gz"));
    assert!(listing(&tmp.path().join("cache/mnist")).is_empty());
    assert_eq!(
        *server.requests.lock().unwrap(),
        vec!["/mirror/train-images-idx3-ubyte.gz"]
    );
}
