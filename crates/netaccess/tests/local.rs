//! `data:` and `file:` URLs through the manager, with the WPT data-URL vectors that the
//! `data-url` crate ships (copied into `tests/wpt/`).

mod support;

use support::done;

use netaccess::{NetworkAccessManager, NetworkError, Request};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/wpt/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    cases.into_iter().filter(|c| c.is_array()).collect()
}

fn bytes_of(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect()
}

#[tokio::test]
async fn wpt_data_url_vectors_pass() {
    let manager = NetworkAccessManager::new();
    let cases = load("data-urls.json");
    let mut passed = 0;
    for case in &cases {
        let url = case[0].as_str().unwrap();
        let reply = manager.get(Request::new(url));
        done(&reply).await;
        if case[1].is_null() {
            assert!(reply.error().is_some(), "{url:?} must fail");
        } else {
            assert_eq!(reply.error().map(|e| e.to_string()), None, "{url:?}");
            let mime = reply
                .header("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(mime.as_deref(), case[1].as_str(), "{url:?}");
            assert_eq!(reply.read_all().to_vec(), bytes_of(&case[2]), "{url:?}");
            assert_eq!(reply.status_code(), None, "data: has no HTTP status");
        }
        passed += 1;
    }
    println!("WPT data-urls.json: {passed}/{} passed", cases.len());
    assert!(passed > 10);
}

#[tokio::test]
async fn wpt_base64_vectors_pass() {
    let manager = NetworkAccessManager::new();
    let cases = load("base64.json");
    for case in &cases {
        let input = case[0].as_str().unwrap();
        let encoded: String = input.bytes().map(|b| format!("%{b:02X}")).collect();
        let reply = manager.get(Request::new(format!("data:;base64,{encoded}")));
        done(&reply).await;
        if case[1].is_null() {
            assert!(reply.error().is_some(), "{input:?} must fail");
        } else {
            assert_eq!(reply.error().map(|e| e.to_string()), None, "{input:?}");
            assert_eq!(reply.read_all().to_vec(), bytes_of(&case[1]), "{input:?}");
        }
    }
    println!("WPT base64.json: {}/{} passed", cases.len(), cases.len());
}

#[tokio::test]
async fn data_urls_support_head_and_refuse_other_operations() {
    let manager = NetworkAccessManager::new();
    let head = manager.head(Request::new("data:text/plain,hello"));
    assert!(head.bytes().await.unwrap().is_empty());
    assert_eq!(head.original_content_length(), Some(5));
    let post = manager.post(Request::new("data:,x"), "body");
    done(&post).await;
    assert_eq!(
        post.error().map(|e| e.kind()),
        Some(NetworkError::ProtocolInvalidOperationError)
    );
    assert!(manager.supported_schemes().contains(&"data"));
}

#[tokio::test]
async fn file_urls_read_write_and_fail_clearly() {
    let dir = std::env::temp_dir().join(format!("netaccess-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hello.txt");
    std::fs::write(&path, vec![b'x'; 200_000]).unwrap();
    let url = url::Url::from_file_path(&path).unwrap();
    let manager = NetworkAccessManager::new();

    let reply = manager.get(Request::from_url(url.clone()));
    assert_eq!(reply.bytes().await.unwrap().len(), 200_000);
    assert_eq!(reply.error().map(|e| e.to_string()), None);
    assert_eq!(reply.header("content-length").unwrap(), "200000");
    assert!(reply.header("last-modified").is_some());

    let put = manager.put(
        Request::from_url(url::Url::from_file_path(dir.join("new.txt")).unwrap()),
        "written",
    );
    done(&put).await;
    assert_eq!(put.error().map(|e| e.to_string()), None);
    assert_eq!(std::fs::read(dir.join("new.txt")).unwrap(), b"written");

    let missing = manager.get(Request::from_url(
        url::Url::from_file_path(dir.join("missing")).unwrap(),
    ));
    done(&missing).await;
    assert_eq!(
        missing.error().map(|e| e.kind()),
        Some(NetworkError::ContentNotFoundError)
    );

    let directory = manager.get(Request::from_url(
        url::Url::from_directory_path(&dir).unwrap(),
    ));
    done(&directory).await;
    assert_eq!(
        directory.error().map(|e| e.kind()),
        Some(NetworkError::ContentAccessDenied)
    );

    let post = manager.post(Request::from_url(url), "x");
    done(&post).await;
    assert_eq!(
        post.error().map(|e| e.kind()),
        Some(NetworkError::ProtocolInvalidOperationError)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
