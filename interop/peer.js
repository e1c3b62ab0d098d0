#!/usr/bin/env node
// keyline interop peer: runs the JavaScript reference implementation of the
// SSB secret-handshake (npm `secret-handshake`, which carries `pull-box-stream`
// after the handshake) over TCP, so that keyline's Rust tests can talk to it.
//
// Written for keyline (MIT). It only uses the public APIs of the reference
// packages and deliberately does not work around their behaviour (for example
// JS sends its goodbye and then immediately half-closes TCP with a FIN).
//
// Usage (see README.md for the full description):
//
//   node peer.js server|client --net <hex64> --seed <hex64>
//        [--port P] [--host 127.0.0.1] [--server-pk <hex64>]
//        [--mode echo|send|deny|silent] [--payloads 0,1,4095,...]
//        [--timeout MS] [--count N] [--hold MS] [--max-time MS] [--verbose]
//
// stdout carries JSON lines only, one object per line:
//   {"event":"listening","port":N,"pk":"<hex>"}                 server, once
//   {"event":"authorize","remote":"<hex>","accepted":bool}      server, per client
//   {"event":"handshake","remote":"<hex>","encryptKey":"<hex>",
//    "encryptNonce":"<hex>","decryptKey":"<hex>","decryptNonce":"<hex>"}
//   {"event":"received","bytes":N,"sha256":"<hex>",
//    "sent_bytes":M,"sent_sha256":"<hex>"}                       echo and send
//   {"event":"silent","bytes":N,"closed_by":"peer"|"timeout"}    silent
//   {"event":"done","ok":true|false,"error":<string|null>}       always last
// With --count N > 1 every per-connection line also has "conn": <0-based index>
// and each connection ends with {"event":"conn_done","conn":k,"ok":..,"error":..}.
// Diagnostics (only with --verbose) go to stderr.
//
// Exit code: 0 if every connection succeeded, 1 otherwise (2 for usage errors).

'use strict'

var net = require('net')
var crypto = require('crypto')
var pull = require('pull-stream')
var toPull = require('stream-to-pull-stream')
var shs = require('secret-handshake')
// chloride is what secret-handshake itself uses (sodium-native underneath);
// we only need it to turn the seed into an Ed25519 key pair.
var sodium = require('chloride')

var DEFAULT_PAYLOADS = '0,1,4095,4096,4097,1048576'
var T0 = Date.now()

// ---------------------------------------------------------------------------
// Output helpers

var doneWritten = false

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function log () {
  if (!opts || !opts.verbose) return
  var args = Array.prototype.slice.call(arguments)
  args.unshift('[peer.js ' + (opts ? opts.role : '?') + ' +' + (Date.now() - T0) + 'ms]')
  console.error.apply(console, args)
}

// Print the final status line (exactly once) and exit.
function finishProcess (ok, error, code) {
  if (doneWritten) return
  doneWritten = true
  if (code === undefined) code = ok ? 0 : 1
  process.stdout.write(
    JSON.stringify({ event: 'done', ok: ok, error: ok ? null : String(error) }) + '\n',
    function () { process.exit(code) }
  )
}

// Turn an error into one line of text. secret-handshake wraps low-level
// errors with `clarify-error`: the message is the high-level one ("shs.client:
// server hung up when we sent hello (phase 3) ...") and the original error only
// survives in the stack, so we append it as "(cause: ...)".
function errorText (err) {
  if (err === true || err == null) return String(err)
  if (typeof err === 'string') return err
  var text = String(err.message || err)
  var stack = typeof err.stack === 'string' ? err.stack.split('\n') : []
  for (var i = 1; i < stack.length; i++) {
    // clarify-error puts the inner error's first line indented by two spaces
    var m = /^ {2}(\w*Error: .*)$/.exec(stack[i])
    if (m) { text += ' (cause: ' + m[1] + ')'; break }
  }
  return text.replace(/\n/g, ' ')
}

// ---------------------------------------------------------------------------
// Command line

function usage (msg) {
  console.error('peer.js: ' + msg)
  console.error('usage: node peer.js server|client --net <hex64> --seed <hex64> ' +
    '[--port P] [--host H] [--server-pk <hex64>] [--mode echo|send|deny|silent] ' +
    '[--payloads L1,L2,...] [--timeout MS] [--count N] [--hold MS] [--max-time MS] [--verbose]')
  finishProcess(false, 'usage: ' + msg, 2)
}

function parseHex (name, value, bytes) {
  if (typeof value !== 'string' || !new RegExp('^[0-9a-fA-F]{' + (2 * bytes) + '}$').test(value)) {
    throw new Error('--' + name + ' must be ' + (2 * bytes) + ' hex characters')
  }
  return Buffer.from(value, 'hex')
}

function parseInteger (name, value, min) {
  if (!/^[0-9]+$/.test(String(value))) throw new Error('--' + name + ' must be a non-negative integer')
  var n = parseInt(value, 10)
  if (n < min) throw new Error('--' + name + ' must be at least ' + min)
  return n
}

function parseArgs (argv) {
  var role = argv[0]
  if (role !== 'server' && role !== 'client') throw new Error('first argument must be "server" or "client"')
  var raw = {}
  var flags = { verbose: true }
  for (var i = 1; i < argv.length; i++) {
    var a = argv[i]
    if (a.slice(0, 2) !== '--') throw new Error('unexpected argument ' + JSON.stringify(a))
    var name = a.slice(2)
    var eq = name.indexOf('=')
    if (eq >= 0) { raw[name.slice(0, eq)] = name.slice(eq + 1); continue }
    if (flags[name]) { raw[name] = true; continue }
    if (i + 1 >= argv.length) throw new Error('missing value for ' + a)
    raw[name] = argv[++i]
  }
  var known = ['net', 'seed', 'port', 'host', 'server-pk', 'mode', 'payloads', 'timeout',
    'count', 'hold', 'max-time', 'verbose']
  Object.keys(raw).forEach(function (k) {
    if (known.indexOf(k) < 0) throw new Error('unknown option --' + k)
  })

  var o = { role: role }
  o.net = parseHex('net', raw.net, 32)
  o.seed = parseHex('seed', raw.seed, 32)
  o.host = raw.host || '127.0.0.1'
  o.port = raw.port === undefined ? 0 : parseInteger('port', raw.port, 0)
  o.mode = raw.mode || 'echo'
  if (['echo', 'send', 'deny', 'silent'].indexOf(o.mode) < 0) throw new Error('unknown --mode ' + o.mode)
  if (o.mode === 'deny' && role !== 'server') throw new Error('--mode deny only makes sense for the server')
  o.timeout = raw.timeout === undefined ? 5000 : parseInteger('timeout', raw.timeout, 1)
  o.count = raw.count === undefined ? 1 : parseInteger('count', raw.count, 1)
  o.hold = raw.hold === undefined ? 30000 : parseInteger('hold', raw.hold, 0)
  o.maxTime = raw['max-time'] === undefined ? 120000 : parseInteger('max-time', raw['max-time'], 1)
  o.verbose = !!raw.verbose
  var p = raw.payloads === undefined ? DEFAULT_PAYLOADS : raw.payloads
  o.payloads = p.trim() === '' ? [] : p.split(',').map(function (s) {
    return parseInteger('payloads', s.trim(), 0)
  })
  if (role === 'client') {
    if (raw['server-pk'] === undefined) throw new Error('the client needs --server-pk')
    if (raw.port === undefined) throw new Error('the client needs --port')
    o.serverPk = parseHex('server-pk', raw['server-pk'], 32)
  } else if (raw['server-pk'] !== undefined) {
    throw new Error('--server-pk is for the client')
  }
  return o
}

// ---------------------------------------------------------------------------
// Deterministic payloads
//
// Payload number i (0-based position in the --payloads list) of length L has
//     byte j = (j*31 + i*7 + 1) & 0xff        for j = 0 .. L-1.
// In send mode they are written in list order, one write per payload (JS
// box-stream splits writes longer than 4096 bytes and ignores empty ones), and
// "sent_sha256" is the SHA-256 of all payloads concatenated. The receiving side
// hashes everything it received, concatenated, into "sha256".

function makePayload (i, len) {
  var b = Buffer.alloc(len)
  for (var j = 0; j < len; j++) b[j] = (j * 31 + i * 7 + 1) & 0xff
  return b
}

// ---------------------------------------------------------------------------
// One connection

// Runs the selected mode over one TCP socket (accepted, or still connecting) and
// calls `onEnd(err)` once, after the socket has closed and the mode finished.
// `tag` is added to every JSON line (empty unless --count > 1).
function runConnection (socket, keys, tag, onEnd) {
  var started = Date.now()
  var firstError = null
  var socketClosed = false
  var sessionDone = false // mode finished (or handshake failed)
  var ended = false
  var graceTimer = null

  function line (obj) { emit(Object.assign(obj, tag)) }
  function fail (err) {
    if (firstError === null) {
      firstError = errorText(err)
      log('error:', firstError)
    }
  }
  function maybeEnd () {
    if (ended) return
    if (socketClosed && sessionDone) {
      ended = true
      clearTimeout(graceTimer)
      log('connection finished after', Date.now() - started, 'ms')
      onEnd(firstError)
    } else if (socketClosed && !graceTimer) {
      // The socket is gone; give the pull-stream chain a moment to report how
      // it ended, then give up waiting.
      graceTimer = setTimeout(function () {
        fail(new Error('socket closed before the ' + opts.mode + ' session finished'))
        sessionDone = true
        maybeEnd()
      }, 2000)
    }
  }

  socket.on('error', function (err) { log('socket error:', err.message) })
  socket.on('close', function () {
    log('socket closed')
    socketClosed = true
    // let the listeners of stream-to-pull-stream run first
    setImmediate(maybeEnd)
  })

  if (opts.mode === 'silent') {
    // Never write anything; read and count whatever arrives until the peer
    // closes, or until --hold ms passed.
    var bytes = 0
    // A client socket that never connected (e.g. ECONNREFUSED) is a failure;
    // once connected, however the peer ends the connection is what we wait for.
    var connected = opts.role === 'server'
    socket.on('connect', function () { connected = true })
    socket.on('error', function (err) { if (!connected) fail(err) })
    socket.on('data', function (d) { bytes += d.length })
    var holdTimer = setTimeout(function () {
      line({ event: 'silent', bytes: bytes, closed_by: 'timeout' })
      fail(new Error('silent: the peer kept the connection open for ' + opts.hold + ' ms'))
      sessionDone = true
      socket.destroy()
    }, opts.hold)
    socket.on('close', function () {
      if (sessionDone) return
      clearTimeout(holdTimer)
      if (connected) line({ event: 'silent', bytes: bytes, closed_by: 'peer' })
      sessionDone = true
    })
    return
  }

  // Wrap the node socket as a duplex pull-stream. The callback reports how
  // the writing side ended (error, or null after a clean end()).
  var raw = toPull.duplex(socket, function (err) {
    if (err) { log('socket sink ended with error'); fail(err) }
  })

  function onHandshake (err, stream) {
    if (err) {
      log('handshake failed after', Date.now() - started, 'ms')
      fail(err)
      sessionDone = true
      maybeEnd()
      return
    }
    log('handshake done after', Date.now() - started, 'ms')
    line({
      event: 'handshake',
      remote: stream.remote.toString('hex'),
      encryptKey: stream.crypto.encryptKey.toString('hex'),
      encryptNonce: stream.crypto.encryptNonce.toString('hex'),
      decryptKey: stream.crypto.decryptKey.toString('hex'),
      decryptNonce: stream.crypto.decryptNonce.toString('hex')
    })

    var recvHash = crypto.createHash('sha256')
    var recvBytes = 0
    var sentHash = crypto.createHash('sha256')
    var sentBytes = 0

    function sourceEnded (err) {
      // err: null/true after the peer's goodbye, an Error otherwise
      if (err && err !== true) fail(err)
      else log('peer goodbye received')
      line({
        event: 'received',
        bytes: recvBytes,
        sha256: recvHash.digest('hex'),
        sent_bytes: sentBytes,
        sent_sha256: sentHash.digest('hex')
      })
      sessionDone = true
      maybeEnd()
    }

    if (opts.mode === 'echo') {
      // Pipe the decrypted stream back into itself. When the peer's goodbye
      // arrives the source ends, so the box-stream sink sends our goodbye
      // (and stream-to-pull-stream then ends the socket).
      pull(
        stream.source,
        function tap (read) {
          return function (abort, cb) {
            read(abort, function (end, data) {
              if (end) {
                sourceEnded(end)
                return cb(end)
              }
              recvBytes += data.length; recvHash.update(data)
              sentBytes += data.length; sentHash.update(data)
              cb(null, data)
            })
          }
        },
        stream.sink
      )
    } else {
      // send mode (deny mode accepts nobody, so never gets here).
      var payloads = opts.payloads.map(function (len, i) { return makePayload(i, len) })
      payloads.forEach(function (p) { sentBytes += p.length; sentHash.update(p) })
      // Writes every payload, then ends: box-stream sends the goodbye.
      pull(pull.values(payloads), stream.sink)
      // Concurrently collect everything the peer sends until its goodbye.
      pull(
        stream.source,
        pull.drain(function (data) {
          recvBytes += data.length
          recvHash.update(data)
        }, sourceEnded)
      )
    }
  }

  var hs
  if (opts.role === 'server') {
    var authorize = function (remotePk, cb) {
      var accepted = opts.mode !== 'deny'
      line({ event: 'authorize', remote: remotePk.toString('hex'), accepted: accepted })
      cb(null, accepted)
    }
    hs = shs.createServer(keys, authorize, opts.net, opts.timeout)(onHandshake)
  } else {
    hs = shs.createClient(keys, opts.net, opts.timeout)(opts.serverPk, onHandshake)
  }
  pull(raw, hs, raw)
}

// ---------------------------------------------------------------------------
// Main

var opts = null
try {
  opts = parseArgs(process.argv.slice(2))
} catch (err) {
  opts = null
  usage(err.message)
}

if (opts) main()

function main () {
  // The long-term key pair: {publicKey: 32 bytes, secretKey: 64 bytes seed|pk}
  var keys = sodium.crypto_sign_seed_keypair(opts.seed)
  log('long-term pk', keys.publicKey.toString('hex'))

  // An uncaught exception (for example the JS server fed a low-order ephemeral
  // key) still kills the process, as it would in JS; we only add the status line.
  process.on('uncaughtException', function (err) {
    console.error(err && err.stack ? err.stack : err)
    finishProcess(false, 'uncaught exception: ' + errorText(err), 1)
  })
  ;['SIGTERM', 'SIGINT'].forEach(function (sig) {
    process.on(sig, function () { finishProcess(false, 'terminated by ' + sig, 1) })
  })
  setTimeout(function () {
    finishProcess(false, 'peer.js: --max-time of ' + opts.maxTime + ' ms exceeded', 1)
  }, opts.maxTime).unref()

  var results = []
  var tagged = opts.count > 1

  function connectionEnded (index, err) {
    results.push(err)
    if (tagged) emit({ event: 'conn_done', conn: index, ok: err === null, error: err })
    if (results.length < opts.count) return
    var firstErr = results.filter(function (e) { return e !== null })[0]
    finishProcess(firstErr === undefined, firstErr)
  }

  if (opts.role === 'server') {
    var accepted = 0
    var server = net.createServer(function (socket) {
      var index = accepted++
      if (accepted >= opts.count) server.close() // accept no more; open sockets stay
      log('accepted connection', index, 'from', socket.remoteAddress + ':' + socket.remotePort)
      runConnection(socket, keys, tagged ? { conn: index } : {}, function (err) {
        connectionEnded(index, err)
      })
    })
    server.on('error', function (err) { finishProcess(false, 'listen: ' + errorText(err)) })
    server.listen(opts.port, opts.host, function () {
      emit({ event: 'listening', port: server.address().port, pk: keys.publicKey.toString('hex') })
    })
  } else {
    // The client runs --count connections one after the other.
    var next = 0
    var connectOne = function () {
      var index = next++
      var socket = net.connect(opts.port, opts.host)
      runConnection(socket, keys, tagged ? { conn: index } : {}, function (err) {
        connectionEnded(index, err)
        if (next < opts.count) connectOne()
      })
    }
    connectOne()
  }
}
