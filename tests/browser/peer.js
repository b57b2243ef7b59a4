// One side of a call, run inside a page (a plain script, injected after socket.io.min.js).
// Only our Socket.IO signaling connects the two peers: by default no TURN, no STUN, host
// candidates only; with `relayOnly` only relayed candidates from the given `iceServers` (our
// embedded TURN). call.mjs drives it through `window.peer`.
'use strict';

window.startPeer = async ({ base, token, peerId, iceServers = [], relayOnly = false }) => {
  const peer = {
    peerId,
    sessionId: null,
    events: [], // every server event: {name, payload, at}
    errors: [], // `error` events, and failures in the handlers below
    candidatesSent: [], // "host udp 127.0.0.1", … as relayed to the other side
    candidatesReceived: 0,
    connectedAt: null,
  };
  window.peer = peer;

  // Resolves with the first event `name` (past or future) that `match` accepts.
  peer.waitFor = (name, match = () => true, ms = 20000) => {
    const seen = peer.events.find((e) => e.name === name && match(e.payload));
    if (seen) return Promise.resolve(seen.payload);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const names = peer.events.map((e) => e.name).join(', ');
        reject(new Error(`no "${name}" event within ${ms} ms (events so far: ${names})`));
      }, ms);
      const listener = (payload) => {
        if (!match(payload)) return;
        clearTimeout(timer);
        socket.off(name, listener);
        resolve(payload);
      };
      socket.on(name, listener);
    });
  };

  const socket = io(base, { auth: { token }, transports: ['websocket'] });
  peer.socket = socket;
  socket.onAny((name, payload) => peer.events.push({ name, payload, at: Date.now() }));
  socket.on('error', (payload) => peer.errors.push({ event: 'error', payload }));
  socket.on('connect_error', (e) => peer.errors.push({ event: 'connect_error', message: e.message }));
  const hello = await peer.waitFor('authenticated');
  peer.userId = hello.userId;

  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: 320, height: 240, frameRate: 15 },
  });
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' });
  peer.pc = pc;
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  showVideo(stream, 'local', true);
  pc.ontrack = (e) => showVideo(e.streams[0], 'remote', false);

  const fail = (where) => (e) => peer.errors.push({ event: where, message: String(e) });
  const send = (event, payload) =>
    socket.emit(event, { sessionId: peer.sessionId, targetUserId: peerId, ...payload });

  pc.onicecandidate = (e) => {
    const c = e.candidate;
    if (c) peer.candidatesSent.push(`${c.type} ${c.protocol} ${c.address}`);
    // null marks the end of candidates; the server relays that too.
    send('ice_candidate', { candidate: c ? c.toJSON() : null });
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'connected' && !peer.connectedAt) {
      peer.connectedAt = Date.now();
      socket.emit('call_connected', { sessionId: peer.sessionId });
    }
  };

  // Candidates that arrive before the remote description wait for it.
  const early = [];
  const addCandidate = (c) => (c ? pc.addIceCandidate(c) : pc.addIceCandidate());
  const remoteSet = async () => {
    for (const c of early.splice(0)) await addCandidate(c).catch(fail('addIceCandidate'));
  };
  const fromPeer = (p) => p.fromUserId === peerId && p.sessionId === peer.sessionId;

  socket.on('offer', async (p) => {
    if (!fromPeer(p)) return peer.errors.push({ event: 'offer from a stranger', payload: p });
    try {
      await pc.setRemoteDescription(p.sdp);
      await remoteSet();
      await pc.setLocalDescription(await pc.createAnswer());
      send('answer', { sdp: pc.localDescription.toJSON() });
    } catch (e) {
      fail('answering')(e);
    }
  });
  socket.on('answer', async (p) => {
    if (!fromPeer(p)) return peer.errors.push({ event: 'answer from a stranger', payload: p });
    await pc.setRemoteDescription(p.sdp).then(remoteSet, fail('setRemoteDescription(answer)'));
  });
  socket.on('ice_candidate', (p) => {
    if (!fromPeer(p)) return peer.errors.push({ event: 'candidate from a stranger', payload: p });
    if (p.candidate) peer.candidatesReceived += 1;
    if (pc.remoteDescription) addCandidate(p.candidate).catch(fail('addIceCandidate'));
    else early.push(p.candidate);
  });

  peer.offer = async () => {
    await pc.setLocalDescription(await pc.createOffer());
    send('offer', { sdp: pc.localDescription.toJSON() });
  };

  // The caller: "click call" (HTTP), join, and offer once the callee is in the call.
  peer.placeCall = async () => {
    peer.clickedAt = Date.now();
    const response = await fetch('/api/v1/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ invitees: [peerId], media: 'video' }),
    });
    const body = await response.json();
    if (response.status !== 201) throw new Error(`POST /api/v1/calls: ${response.status} ${JSON.stringify(body)}`);
    peer.sessionId = body.session_id;
    const joined = await join();
    const calleeIn = (j) => j.participants.some((x) => (x.userId ?? x.user_id) === peerId);
    if (!calleeIn(joined)) {
      await peer.waitFor('participant_joined', (p) => p.sessionId === peer.sessionId && p.userId === peerId);
    }
    await peer.offer();
    return { sessionId: peer.sessionId, createdState: body.state };
  };

  // The callee: wait for the ring, then join (which answers the call).
  peer.answerCall = async () => {
    const ring = await peer.waitFor('incoming_call', (p) => p.callerId === peerId);
    peer.sessionId = ring.sessionId;
    peer.joinedAt = Date.now();
    await join();
    return ring;
  };

  async function join() {
    const joined = peer.waitFor('call_joined', (p) => p.sessionId === peer.sessionId);
    socket.emit('join_call', { sessionId: peer.sessionId });
    return joined;
  }

  peer.stats = async () => {
    const report = await pc.getStats();
    const all = [...report.values()];
    const inbound = (kind) => all.find((s) => s.type === 'inbound-rtp' && s.kind === kind) ?? {};
    const video = inbound('video');
    const audio = inbound('audio');
    const transport = all.find((s) => s.type === 'transport') ?? {};
    const pair = report.get(transport.selectedCandidatePairId) ?? {};
    const local = report.get(pair.localCandidateId) ?? {};
    const remote = report.get(pair.remoteCandidateId) ?? {};
    return {
      framesDecoded: video.framesDecoded ?? 0,
      frameWidth: video.frameWidth ?? 0,
      videoPacketsReceived: video.packetsReceived ?? 0,
      videoBytesReceived: video.bytesReceived ?? 0,
      audioPacketsReceived: audio.packetsReceived ?? 0,
      pair: {
        state: pair.state,
        nominated: pair.nominated,
        rttMs: pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
        local: `${local.candidateType} ${local.protocol} ${local.address}:${local.port}`,
        remote: `${remote.candidateType} ${remote.protocol} ${remote.address}:${remote.port}`,
        localType: local.candidateType,
        localRelayProtocol: local.relayProtocol,
        remoteType: remote.candidateType,
        localAddress: local.address,
        remoteAddress: remote.address,
        localPort: local.port,
        remotePort: remote.port,
      },
    };
  };

  peer.leave = () => socket.emit('leave_call');

  function showVideo(mediaStream, id, muted) {
    let video = document.getElementById(id);
    if (!video) {
      if (!document.getElementById('local') && !document.getElementById('remote')) {
        document.body.innerHTML = '';
      }
      const figure = document.createElement('figure');
      figure.style.display = 'inline-block';
      figure.innerHTML = `<figcaption>${id}</figcaption>`;
      video = document.createElement('video');
      Object.assign(video, { id, autoplay: true, playsInline: true, muted, width: 320, height: 240 });
      figure.appendChild(video);
      document.body.appendChild(figure);
    }
    video.srcObject = mediaStream;
  }

  return { userId: peer.userId };
};
