//! The operator page's HTTP layer (spec §11, §16 item 22) against a recording backend: token
//! and session authentication, the Host check, the custom header on state-changing requests,
//! security headers, no CORS, and each route reaching the backend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyline_signer::bunker::operator::{
    self, ApprovalDecision, OperatorBackend, OperatorConfig, SESSION_COOKIE,
};
use keyline_signer::error::Result;
use serde_json::{Value, json};

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl OperatorBackend for Recorder {
    async fn keys(&self) -> Result<Value> {
        self.log("keys".into());
        Ok(json!({"keys": [{"npub": "npub1test", "threshold": 2, "shares": 3}]}))
    }
    async fn connections(&self) -> Result<Value> {
        self.log("connections".into());
        Ok(json!({"connections": []}))
    }
    async fn set_grants(&self, client: &str, grants: Value) -> Result<bool> {
        self.log(format!("set_grants {client} {grants}"));
        Ok(client == "aa")
    }
    async fn revoke(&self, client: &str) -> Result<bool> {
        self.log(format!("revoke {client}"));
        Ok(client == "aa")
    }
    async fn approvals(&self) -> Result<Value> {
        self.log("approvals".into());
        Ok(json!({"approvals": []}))
    }
    async fn approval(&self, id: &str) -> Result<Option<Value>> {
        self.log(format!("approval {id}"));
        Ok((id == "ap1").then(|| json!({"approval_id": "ap1", "method": "sign_event"})))
    }
    async fn decide(&self, id: &str, decision: ApprovalDecision) -> Result<bool> {
        self.log(format!("decide {id} {decision:?}"));
        Ok(id == "ap1")
    }
    async fn audit(&self, before: Option<u64>, limit: usize) -> Result<Value> {
        self.log(format!("audit {before:?} {limit}"));
        Ok(json!({"entries": []}))
    }
    async fn mint_bunker_uri(&self) -> Result<String> {
        self.log("mint".into());
        Ok("bunker://00?relay=ws://127.0.0.1:1&secret=s".into())
    }
    async fn nostrconnect(&self, uri: &str) -> Result<Value> {
        self.log(format!("nostrconnect {uri}"));
        Ok(json!({"client_pubkey": "00"}))
    }
}

struct Page {
    base: String,
    token: String,
    backend: Arc<Recorder>,
    http: reqwest::Client,
}

async fn start() -> Page {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (token, hash) = operator::new_token().unwrap();
    let backend = Arc::new(Recorder::default());
    let router = operator::router(Arc::clone(&backend), OperatorConfig::for_listen(hash, addr));
    tokio::spawn(operator::serve(listener, router, std::future::pending()));
    Page {
        base: format!("http://{addr}"),
        token: token.to_string(),
        backend,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    }
}

impl Page {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }
    fn send(&self, method: reqwest::Method, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-keyline-operator", "1")
            .header("content-type", "application/json")
            .body(body.to_string())
    }
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

#[tokio::test]
async fn the_api_needs_the_token_or_a_session() {
    let page = start().await;
    let r = page.get("/api/keys").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = page
        .get("/api/keys")
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        page.backend.calls().is_empty(),
        "nothing reached the backend"
    );

    let r = page
        .get("/api/keys")
        .header("authorization", page.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["keys"][0]["threshold"], 2);

    // Browser login: wrong token refused, right token sets an HttpOnly SameSite=Strict cookie.
    let r = page
        .send(
            reqwest::Method::POST,
            "/api/login",
            json!({"token": "nope"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = page
        .send(
            reqwest::Method::POST,
            "/api/login",
            json!({"token": page.token}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("{SESSION_COOKIE}=")),
        "{cookie}"
    );
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = page
        .get("/api/connections")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Logout ends the session.
    let r = page
        .send(reqwest::Method::POST, "/api/logout", json!({}))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = page
        .get("/api/connections")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_wrong_host_and_a_missing_custom_header_are_refused() {
    let page = start().await;
    let r = page
        .get("/api/keys")
        .header("host", "evil.example:80")
        .header("authorization", page.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    let r = page
        .get("/")
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        421,
        "the page itself is not served to a rebound name"
    );

    // POST without the custom header: refused before authentication and the backend.
    let r = page
        .http
        .post(format!("{}/api/approvals/ap1", page.base))
        .header("authorization", page.bearer())
        .header("content-type", "application/json")
        .body(json!({"decision": "allow_once"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = page
        .http
        .delete(format!("{}/api/connections/aa", page.base))
        .header("authorization", page.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        page.backend.calls().is_empty(),
        "{:?}",
        page.backend.calls()
    );
}

#[tokio::test]
async fn security_headers_and_no_cors() {
    let page = start().await;
    for path in ["/", "/app.js", "/approve/abc", "/api/keys"] {
        let r = page
            .get(path)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(
            h["content-security-policy"],
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h.keys().all(|k| !k.as_str().starts_with("access-control-")),
            "{path}: no CORS headers"
        );
    }
    let html = page.get("/approve/abc").send().await.unwrap();
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let html = html.text().await.unwrap();
    assert!(html.contains("<script src=\"/app.js\" defer></script>"));
    assert!(
        !html.contains("onclick"),
        "no inline handlers under the CSP"
    );
}

impl Page {
    /// An authenticated request; returns the status and the JSON body (`null` if none).
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let request = if method == reqwest::Method::GET {
            self.get(path)
        } else {
            self.send(method, path, body)
        };
        let response = request
            .header("authorization", self.bearer())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn routes_reach_the_backend() {
    use reqwest::Method;
    let page = start().await;
    let decide = |decision: Value| page.call(Method::POST, "/api/approvals/ap1", decision);
    assert_eq!(decide(json!({"decision": "allow_once"})).await.0, 200);
    assert_eq!(
        decide(json!({"decision": "allow_for", "duration": 60}))
            .await
            .0,
        200
    );
    assert_eq!(decide(json!({"decision": "allow_always"})).await.0, 200);
    assert_eq!(decide(json!({"decision": "deny"})).await.0, 200);
    assert_eq!(decide(json!({"decision": "maybe"})).await.0, 400);
    assert_eq!(
        decide(json!({"decision": "allow_for"})).await.0,
        400,
        "allow_for needs a duration"
    );
    let deny = json!({"decision": "deny"});
    assert_eq!(
        page.call(Method::POST, "/api/approvals/nope", deny).await.0,
        404
    );
    let (status, body) = page
        .call(Method::GET, "/api/approvals/ap1", Value::Null)
        .await;
    assert_eq!((status, &body["method"]), (200, &json!("sign_event")));
    assert_eq!(
        page.call(Method::GET, "/api/approvals/zz", Value::Null)
            .await
            .0,
        404
    );
    let grants = json!([{"method": "sign_event", "kind": 1}]);
    assert_eq!(
        page.call(Method::PUT, "/api/connections/aa/grants", grants)
            .await
            .0,
        200
    );
    let not_array = json!({"not": "an array"});
    assert_eq!(
        page.call(Method::PUT, "/api/connections/aa/grants", not_array)
            .await
            .0,
        400
    );
    assert_eq!(
        page.call(Method::DELETE, "/api/connections/aa", json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        page.call(Method::DELETE, "/api/connections/bb", json!({}))
            .await
            .0,
        404
    );
    let audit = "/api/audit?before=10&limit=100000";
    assert_eq!(page.call(Method::GET, audit, Value::Null).await.0, 200);
    let (_, minted) = page.call(Method::POST, "/api/bunker-uris", json!({})).await;
    assert!(
        minted["bunker_uri"]
            .as_str()
            .unwrap()
            .starts_with("bunker://")
    );
    assert_eq!(
        page.backend.calls(),
        vec![
            "decide ap1 AllowOnce".to_owned(),
            "decide ap1 AllowFor(60s)".into(),
            "decide ap1 AllowAlways".into(),
            "decide ap1 Deny".into(),
            "decide nope Deny".into(),
            "approval ap1".into(),
            "approval zz".into(),
            "set_grants aa [{\"kind\":1,\"method\":\"sign_event\"}]".into(),
            "revoke aa".into(),
            "revoke bb".into(),
            "audit Some(10) 500".into(),
            "mint".into(),
        ]
    );
}

/// The page in a real browser (Debian `chromium` via `web/operator/decide.mjs`): open the
/// approval link, log in with the token, see what is asked, decide. Once per decision button
/// that maps to a distinct backend call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_and_decides_through_the_page() {
    let Some(dir) = keyline_testkit::node_package("web/operator", true) else {
        return;
    };
    let page = start().await;
    for (button, expected) in [
        ("deny", "decide ap1 Deny"),
        ("allow_once", "decide ap1 AllowOnce"),
        ("allow_hour", "decide ap1 AllowFor(3600s)"),
    ] {
        let mut command = std::process::Command::new("node");
        command
            .arg(dir.join("decide.mjs"))
            .args(["--url", &format!("{}/approve/ap1", page.base)])
            .args(["--token", &page.token, "--decision", button])
            .env("KEYLINE_CHROMIUM", keyline_testkit::chromium());
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let result: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
            panic!(
                "decide.mjs said {line:?} ({e}); stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(
            result["details"]["method"], "sign_event",
            "the page shows what is asked"
        );
        assert_eq!(
            result["status"],
            format!(
                "decided: {}",
                if button == "allow_hour" {
                    "allow_for"
                } else {
                    button
                }
            )
        );
        assert_eq!(page.backend.calls().last().unwrap(), expected);
    }
}
