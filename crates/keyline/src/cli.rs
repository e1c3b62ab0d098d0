//! The command line: `keyline <area> <verb>`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// keyline: public-key-identified, end-to-end secure channels.
///
/// A peer is its key: no certificate authorities, no passwords. Your identity lives in
/// `--home` (default ~/.keyline); peers you trust are pinned in its known-peers store.
#[derive(Debug, Parser)]
#[command(
    name = "keyline",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// Directory holding identity.toml, keyline.db and keyline.toml.
    #[arg(long, global = true, env = "KEYLINE_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Print every result as JSON on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// More logging on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new identity (an Ed25519 and a secp256k1 key) in the home directory.
    Keygen {
        /// Replace an existing identity (its keys are lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the identity's public keys in every form (SSB id, hex, npub, fingerprints).
    Id,
    /// Replace one key of the identity with an imported one.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage known peers (pinned public keys).
    #[command(subcommand)]
    Pin(PinCommand),
    /// SSB secret-handshake: serve or connect over an authenticated, encrypted TCP stream.
    #[command(subcommand)]
    Shs(ShsCommand),
    /// KPS key-pinned streams: serve or dial `ip:port:certhash` over QUIC.
    #[command(subcommand)]
    Kps(KpsCommand),
    /// Signed (and verified) stateless HTTP: a demo API server and a fetch client.
    #[command(subcommand)]
    Http(HttpCommand),
    /// Threshold Nostr signer: FROST keys held as shares by separate nodes.
    #[command(subcommand)]
    Signer(SignerCommand),
    /// SBRP relay: routes end-to-end encrypted sessions between clients and daemons.
    #[command(subcommand)]
    Relay(RelayCommand),
    /// SBRP daemons and clients: end-to-end encrypted RPC through a relay.
    #[command(subcommand)]
    Sbrp(SbrpCommand),
    /// Run every service on loopback defaults (configure in <home>/keyline.toml).
    Serve(ServeArgs),
    /// Measure keyline against the limit it is bounded by, in the same run.
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImportCommand {
    /// Import the Ed25519 key of an SSB secret file (e.g. ~/.ssb/secret).
    Ssb {
        /// The SSB secret file.
        file: PathBuf,
    },
    /// Import a Nostr secret key (nsec1… or 64 hex characters) as the secp256k1 key.
    ///
    /// Passing a secret on the command line leaves it in your shell history; `-` reads it
    /// from standard input instead.
    Nsec {
        /// nsec1…, 64 hex characters, or `-` for standard input.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PinCommand {
    /// List pinned peers.
    List {
        /// Only this protocol (e.g. shs).
        #[arg(long)]
        protocol: Option<String>,
    },
    /// Pin a peer's public key.
    ///
    /// Example: keyline pin add shs 127.0.0.1:8008 @FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=.ed25519
    Add {
        /// Protocol the pin applies to (shs, …).
        protocol: String,
        /// Peer name or address (for shs: HOST:PORT to dial, or any name for a client).
        peer: String,
        /// The public key: hex, base64, or an SSB id.
        key: String,
        /// A note to remember the peer by.
        #[arg(long)]
        note: Option<String>,
        /// Replace an existing pin with another key.
        #[arg(long)]
        replace: bool,
    },
    /// Remove a pin.
    Remove {
        /// Protocol of the pin.
        protocol: String,
        /// Peer name or address of the pin.
        peer: String,
    },
}

/// Shared by SHS commands.
#[derive(Debug, Args)]
pub(crate) struct NetworkArgs {
    /// Network key (64 hex characters); default: the SSB main net.
    #[arg(long, value_name = "HEX")]
    pub(crate) network_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ShsCommand {
    /// Accept secret-handshake connections.
    ///
    /// Prints one JSON line {"listen", "public_key", "address"} once listening. Without
    /// --allow/--allow-any only clients pinned with `keyline pin add shs NAME KEY` get in.
    /// With --echo each connection's stream is sent back; otherwise what clients send is
    /// written to stdout.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8008")]
        listen: SocketAddr,
        #[command(flatten)]
        network: NetworkArgs,
        /// Accept this client key (hex, base64 or SSB id); repeatable.
        #[arg(long, value_name = "KEY")]
        allow: Vec<String>,
        /// Accept any client key.
        #[arg(long, conflicts_with = "allow")]
        allow_any: bool,
        /// Echo each connection's stream back to it.
        #[arg(long)]
        echo: bool,
    },
    /// A secure netcat: stdin goes to the peer, the peer's bytes to stdout.
    ///
    /// TARGET is `net:HOST:PORT~shs:KEY`, or HOST:PORT with --server-key, or HOST:PORT whose
    /// key is pinned. A new server key is pinned on first use (trust on first use); a key
    /// that differs from the pin is refused. Exits 0 once both goodbyes are done.
    Connect {
        /// net:HOST:PORT~shs:KEY, or HOST:PORT.
        target: String,
        /// The server's public key (hex, base64 or SSB id).
        #[arg(long, value_name = "KEY")]
        server_key: Option<String>,
        #[command(flatten)]
        network: NetworkArgs,
    },
}

/// Where share envelopes' key-encryption key lives.
#[derive(Debug, Clone, Args)]
pub(crate) struct KekArgs {
    /// PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so): shares are sealed under an
    /// AES-256 key generated inside the token, never exported. Without it, a key file in the
    /// home directory is used (local use only; a warning says so).
    #[arg(long, value_name = "PATH", env = "KEYLINE_PKCS11_MODULE")]
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    #[arg(
        long,
        value_name = "LABEL",
        env = "KEYLINE_PKCS11_TOKEN",
        requires = "pkcs11_module"
    )]
    pub(crate) pkcs11_token: Option<String>,
    /// Environment variable holding the token's user PIN (never pass a PIN as an argument).
    #[arg(long, value_name = "VAR", default_value = "KEYLINE_PKCS11_PIN")]
    pub(crate) pkcs11_pin_env: String,
    /// Label of the key-encryption key inside the token (created on first use).
    #[arg(long, value_name = "LABEL", default_value = "keyline-signer-kek")]
    pub(crate) pkcs11_key_label: String,
}

/// Which nodes hold the shares.
#[derive(Debug, Clone, Args)]
pub(crate) struct NodesArgs {
    /// Share-holder nodes as KEY@HOST:PORT, comma-separated (KEY: the node key printed by
    /// `keyline signer node`). Without it the shares go to local in-process nodes (dev mode:
    /// every share on this machine).
    #[arg(long, value_delimiter = ',', value_name = "KEY@ADDR,…")]
    pub(crate) nodes: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SignerCommand {
    /// Create a new key by distributed key generation among the nodes.
    ///
    /// Prints {"npub", "pubkey", "threshold", "shares"} with --json.
    Keygen {
        /// Signatures need this many shares (t).
        #[arg(short = 't', long, default_value_t = 2)]
        threshold: u16,
        /// Number of shares and nodes (n).
        #[arg(short = 'n', long, default_value_t = 3)]
        shares: u16,
        #[command(flatten)]
        nodes: NodesArgs,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// Split an existing Nostr secret key into shares (the npub stays the same).
    ///
    /// The machine running this sees the whole key once; it is wiped after splitting.
    Import {
        /// nsec1…, 64 hex characters, or `-` to read it from standard input.
        key: String,
        /// Signatures need this many shares (t).
        #[arg(short = 't', long, default_value_t = 2)]
        threshold: u16,
        /// Number of shares and nodes (n).
        #[arg(short = 'n', long, default_value_t = 3)]
        shares: u16,
        #[command(flatten)]
        nodes: NodesArgs,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// Run one share-holder node. Prints {"node", "listen", "descriptor"} once listening.
    Node {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7450")]
        listen: SocketAddr,
        /// Coordinator key allowed to use this node (repeatable; pinned). Without it, the
        /// coordinators pinned with `keyline pin add --protocol signer` are served.
        #[arg(long = "coordinator", value_name = "KEY")]
        coordinators: Vec<String>,
        /// Another node's descriptor (hex, as `--describe` prints it) that this node accepts
        /// as a fellow participant in key ceremonies (repeatable). Pinning the descriptor,
        /// not just the key, stops a coordinator from substituting the encryption key that
        /// protects ceremony secrets.
        #[arg(long = "peer", value_name = "DESCRIPTOR")]
        peers: Vec<String>,
        /// Create this node's keys if needed, print {"node", "descriptor"} and exit.
        #[arg(long)]
        describe: bool,
        /// Allow raw 32-byte signing (`keyline signer sign`): off by default, because a raw
        /// message may be the id of an event this node has never seen.
        #[arg(long)]
        allow_raw_sign: bool,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// Sign a 32-byte message (hex) with a threshold key; prints the BIP340 signature.
    Sign {
        /// The key: npub1… or 64 hex characters.
        #[arg(long)]
        key: String,
        /// The 32-byte message as 64 hex characters.
        message: String,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// Replace every share of a key with new ones (same npub); old shares become useless.
    Refresh {
        /// The key: npub1… or 64 hex characters.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// List the threshold keys this coordinator knows.
    Keys,
    /// Run the NIP-46 bunker: Nostr remote signing with the threshold key.
    ///
    /// Creates a 2-of-3 key on local nodes (dev mode) when there is none, a transport key
    /// (sealed like the shares) and an operator token (<home>/signer/operator-token, 0600).
    /// Without --relay it starts a Nostr relay on loopback. Prints one JSON line
    /// {"bunker_uri", "npub", "relays", "operator_url"} once listening: paste the bunker URI
    /// (it carries a fresh single-use secret) into a NIP-46 client. Requests that need a
    /// decision show up on the operator page (auth_url).
    Serve {
        /// Nostr relay to listen on (repeatable); default: an embedded relay on loopback.
        #[arg(long = "relay", value_name = "URL")]
        relays: Vec<String>,
        /// Run the nodes in this process (dev mode); implied for keys created in dev mode.
        #[arg(long)]
        local: bool,
        #[command(flatten)]
        bunker: BunkerArgs,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// Accept a client's nostrconnect:// URI (client-initiated connection) in the running
    /// bunker of this home.
    Connect {
        /// The nostrconnect://… URI the client shows.
        uri: String,
    },
    /// List NIP-46 client connections with their grants.
    Connections,
    /// Revoke a client at once (its next request is refused).
    Revoke {
        /// The client's pubkey (64 hex or npub1…).
        client: String,
    },
    /// Grant a client methods or event kinds (allow by default).
    ///
    /// Example: `keyline signer allow <client> kind:1 kind:7 nip44_encrypt --per-minute 30`.
    /// Sensitive kinds (0, 3, 5, 10002, 27235, 22242) are only covered when named.
    Allow {
        /// The client's pubkey (64 hex or npub1…).
        client: String,
        /// `kind:N` (sign_event of kind N), `sign_event`, `nip44_encrypt`, `nip44_decrypt`,
        /// `nip04_encrypt`, `nip04_decrypt`, …
        #[arg(required = true)]
        grants: Vec<String>,
        /// Deny instead of allow.
        #[arg(long, conflicts_with = "ask")]
        deny: bool,
        /// Ask the operator every time instead of allowing.
        #[arg(long)]
        ask: bool,
        /// Let the grant expire after this long (e.g. 15m, 1h, 1d, 1w).
        #[arg(long = "for", value_name = "DURATION")]
        expires: Option<String>,
        /// At most this many requests per minute.
        #[arg(long)]
        per_minute: Option<u32>,
        /// At most this many requests per day.
        #[arg(long)]
        per_day: Option<u32>,
    },
}

/// Where the bunker listens.
#[derive(Debug, Args, Clone)]
pub(crate) struct BunkerArgs {
    /// The embedded Nostr relay's address (when no --relay is given).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7447")]
    pub(crate) relay_listen: SocketAddr,
    /// The operator page's address (loopback only).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7090")]
    pub(crate) operator_listen: SocketAddr,
    /// How long a request waiting for the operator (auth_url) stays open, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub(crate) approval_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HttpCommand {
    /// Serve the demo API (GET /whoami, POST /echo) behind keyline-http-v1 / NIP-98.
    ///
    /// Every request must be signed; every response is signed by this server's key. Prints
    /// one JSON line {"listen", "origin", "keyid"} once listening.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7080")]
        listen: SocketAddr,
        /// The public origin clients use (scheme://host[:port]); default http://LISTEN.
        /// Requests are verified against it, never against Host or X-Forwarded-*.
        #[arg(long, value_name = "URL")]
        origin: Option<String>,
        /// Which identity key signs responses.
        #[arg(long, value_enum, default_value = "ed25519")]
        key: HttpKey,
    },
    /// Send a signed request and print the verified response body.
    ///
    /// The server key is pinned on first use (protocol http, peer = the origin); a response
    /// not signed by the pinned key is refused.
    Fetch(FetchArgs),
}

/// `keyline http fetch` arguments.
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// The URL.
    pub(crate) url: String,
    /// Method.
    #[arg(short = 'X', long, default_value = "GET")]
    pub(crate) request: String,
    /// Body: text, or @FILE to read a file.
    #[arg(short = 'd', long)]
    pub(crate) data: Option<String>,
    /// Extra header "Name: value"; repeatable.
    #[arg(short = 'H', long = "header")]
    pub(crate) headers: Vec<String>,
    /// Signature scheme.
    #[arg(long, value_enum, default_value = "keyline")]
    pub(crate) scheme: HttpScheme,
    /// Which identity key signs (keyline scheme); NIP-98 always uses the secp256k1 key.
    #[arg(long, value_enum, default_value = "ed25519")]
    pub(crate) key: HttpKey,
    /// Trust this server key (keyid, e.g. ed25519:…) instead of the pin store.
    #[arg(long, value_name = "KEYID")]
    pub(crate) server_key: Option<String>,
    /// Print the status line and headers before the body.
    #[arg(short = 'i', long)]
    pub(crate) include: bool,
    /// Encrypt the body end to end (HPKE to the server's published key; the response
    /// comes back sealed too). Needs the keyline scheme.
    #[arg(long)]
    pub(crate) seal: bool,
}

/// Which identity key signs HTTP messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum HttpKey {
    /// The Ed25519 key.
    Ed25519,
    /// The secp256k1 key (BIP340 Schnorr).
    Bip340,
}

/// HTTP signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum HttpScheme {
    /// keyline-http-v1 (RFC 9421 profile).
    Keyline,
    /// NIP-98 (Authorization: Nostr).
    Nip98,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KpsCommand {
    /// Listen for KPS connections and echo every stream and datagram.
    ///
    /// The first stdout line is `listening; dial with kps.dial("IP:PORT:CERTHASH")` (with
    /// --json one JSON object {"listen", "address", "certhash"}), flushed at once; logs go to
    /// stderr. The identity is a self-signed certificate in --key, created if absent; the
    /// certhash in the address is the only thing a client needs to trust.
    Serve {
        /// Address to listen on; `:PORT` means every interface (dual-stack).
        #[arg(long, default_value = ":0")]
        listen: String,
        /// Key file (PKCS#8 key + certificate, PEM, mode 0600); default <home>/kps.key.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// IP address to advertise in the dial address (default: the bound one, or
        /// 127.0.0.1 for a wildcard).
        #[arg(long, value_name = "IP")]
        ip: Option<std::net::IpAddr>,
    },
    /// Dial a KPS address, send a message, and check the echo.
    ///
    /// Prints the echo (no trailing newline), or `echoed <n> bytes OK` with --repeat > 1. A
    /// wrong certhash fails before any application byte is sent.
    Dial {
        /// IP:PORT:CERTHASH (IPv6 in brackets).
        #[arg(long)]
        addr: String,
        /// Transport.
        #[arg(long, value_enum, default_value = "quic")]
        transport: KpsTransport,
        /// Message to send.
        #[arg(long, default_value = "hello-kps")]
        message: String,
        /// Send the message this many times in one stream.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Give up after this long (Go duration: 15s, 500ms, 1m).
        #[arg(long, default_value = "15s", value_parser = parse_go_duration)]
        timeout: std::time::Duration,
        /// Close the connection with this registry code (0: a clean close).
        #[arg(long, default_value_t = 0)]
        closecode: u64,
        /// Echo one datagram instead of a stream.
        #[arg(long)]
        datagram: bool,
    },
    /// Print the certhash of a key file.
    Certhash {
        /// The key file.
        file: PathBuf,
    },
}

/// KPS transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KpsTransport {
    /// QUIC (native clients).
    Quic,
    /// WebRTC data channels (what browsers speak), on the same port as QUIC.
    Webrtc,
}

/// Parses a Go-style duration: a number with `ms`, `s`, `m` or `h`.
pub(crate) fn parse_go_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected e.g. 15s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum RelayCommand {
    /// Run an SBRP relay with its token issuer.
    ///
    /// Prints one JSON line {"listen", "url", "jwks", "sessions"} once listening: `url` is
    /// the WebSocket endpoint, `sessions` the issuer's POST /v1/sessions. The issuer's
    /// signing key is kept in <home>/relay-issuer.key (mode 0600), so tokens survive a
    /// restart. No TLS: put a TLS terminator in front for anything but loopback.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
        /// The ws:// or wss:// URL clients and daemons reach the relay at (default:
        /// ws://LISTEN/).
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
}

/// Where the relay (and its issuer) is.
#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// The relay's issuer: http://HOST:PORT (or the relay's ws:// URL).
    #[arg(
        long,
        value_name = "URL",
        env = "KEYLINE_RELAY",
        default_value = "http://127.0.0.1:7070"
    )]
    pub(crate) relay: String,
    /// The daemon id.
    #[arg(long, value_name = "ID")]
    pub(crate) daemon_id: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SbrpCommand {
    /// Run a daemon: register with the relay and answer the built-in methods.
    ///
    /// The identity is the home's Ed25519 key (proved to the issuer, which binds it to the
    /// daemon id on first use). Serves $sideband/info, rpc.list, rpc.describe, echo and, with
    /// --expose-dir, read-only fs.list / fs.read confined to that directory. Prints one
    /// JSON line {"daemon_id", "relay", "identity"} once registered; reconnects on its own.
    Daemon {
        #[command(flatten)]
        relay: RelayArgs,
        /// Serve this directory read-only through $sideband/fs.list and fs.read.
        #[arg(long, value_name = "DIR")]
        expose_dir: Option<PathBuf>,
        /// Also serve files and directories whose names start with a dot.
        #[arg(long, requires = "expose_dir")]
        allow_dotfiles: bool,
    },
    /// Call one method on a daemon and print its JSON result.
    ///
    /// The daemon's identity key is pinned on first use (protocol sbrp, peer = the daemon
    /// id); a different key later is refused with identity_key_changed and both
    /// fingerprints. Example: keyline sbrp call --daemon-id d1 '$sideband/echo' '{"hi":1}'
    Call {
        #[command(flatten)]
        relay: RelayArgs,
        /// The method, e.g. $sideband/info.
        method: String,
        /// The params: JSON text, @FILE to read a file, or - for standard input.
        params: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Do not start the SHS listener.
    #[arg(long)]
    pub(crate) no_shs: bool,
    /// SHS listen address (overrides keyline.toml).
    #[arg(long, value_name = "ADDR")]
    pub(crate) shs_listen: Option<SocketAddr>,
    /// Do not start the HTTP demo API.
    #[arg(long)]
    pub(crate) no_http: bool,
    /// HTTP listen address (overrides keyline.toml).
    #[arg(long, value_name = "ADDR")]
    pub(crate) http_listen: Option<SocketAddr>,
    /// Do not start the KPS listener.
    #[arg(long)]
    pub(crate) no_kps: bool,
    /// KPS listen address (overrides keyline.toml).
    #[arg(long, value_name = "ADDR")]
    pub(crate) kps_listen: Option<SocketAddr>,
    /// Do not start the SBRP relay.
    #[arg(long)]
    pub(crate) no_relay: bool,
    /// SBRP relay listen address (overrides keyline.toml).
    #[arg(long, value_name = "ADDR")]
    pub(crate) relay_listen: Option<SocketAddr>,
    /// Do not start the NIP-46 bunker.
    #[arg(long)]
    pub(crate) no_bunker: bool,
    /// The bunker's embedded Nostr relay address (overrides keyline.toml).
    #[arg(long, value_name = "ADDR")]
    pub(crate) bunker_relay_listen: Option<SocketAddr>,
    /// The bunker's operator page address (overrides keyline.toml).
    #[arg(long, value_name = "ADDR")]
    pub(crate) bunker_operator_listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The area to measure.
    #[arg(value_enum)]
    pub(crate) area: BenchArea,
    /// Keep the run short (about 20 s at most).
    #[arg(long)]
    pub(crate) quick: bool,
    /// With `kps`: measure the WebRTC transport (8 MiB echo, connect time) next to QUIC
    /// on the same listener, instead of the QUIC-only figures.
    #[arg(long)]
    pub(crate) webrtc: bool,
    /// Internal: serve one hop of `bench relay` in this process (a child of the benchmark).
    #[arg(long, hide = true, value_enum)]
    pub(crate) hop: Option<crate::bench::Hop>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum BenchArea {
    /// Secret-handshake and box-stream.
    Shs,
    /// KPS over QUIC: bulk, handshakes, datagrams.
    Kps,
    /// Signed HTTP: request verification and signed requests through axum.
    Http,
    /// Threshold signer: 2-of-3 signatures over node links vs raw BIP340 and raw FROST.
    Signer,
    /// NIP-46 bunker: sign_event end to end through the embedded relay vs raw threshold
    /// signing over the same node links.
    Bunker,
    /// SBRP relay: frames/s and latency vs a raw WebSocket hop, memory per session, AEAD.
    Relay,
}
