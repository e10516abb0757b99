// wagate dashboard: progressive enhancement only. Every page works without this file
// (forms post, pages render on the server); with it, statuses and messages update live,
// links copy with one click, destructive forms ask first, and calls carry audio.
// No build step, no dependencies, no outside requests.
(function () {
  "use strict";
  var body = document.body;

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function csrf() { var i = $("input[name=csrf]"); return i ? i.value : ""; }

  // Copy buttons: <button data-copy="input-id">.
  $all("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.dataset.copy);
      if (!input) { return; }
      var done = function () {
        var was = button.textContent;
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = was; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () { input.select(); });
      } else {
        input.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* selected for the user */ }
      }
    });
  });

  // Forms that destroy something ask first (the server also wants its own confirmation).
  $all("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.dataset.confirm)) { ev.preventDefault(); }
    });
  });

  // Live updates over server-sent events.
  function applyLine(l) {
    $all('[data-line="' + l.id + '"]').forEach(function (root) {
      var status = $('[data-role="status"]', root);
      if (status) { status.dataset.status = l.status; }
      var text = $('[data-role="status-text"]', root);
      if (text) { text.textContent = l.status_text; }
      var phone = $('[data-role="phone"]', root);
      if (phone && l.phone_number) { phone.textContent = l.phone_number; }
    });
  }

  function applyMessage(m) {
    var list = document.getElementById("messages");
    if (!list) { return; }
    var item = document.getElementById("msg-" + m.id);
    if (item) {
      var pill = $('[data-role="msg-status"]', item);
      if (pill) { pill.textContent = m.status; }
      return;
    }
    item = document.createElement("li");
    item.className = "row msg " + m.direction;
    item.id = "msg-" + m.id;
    var head = document.createElement("div");
    head.className = "row-head";
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = m.who;
    var pill2 = document.createElement("span");
    pill2.className = "pill";
    pill2.dataset.role = "msg-status";
    pill2.textContent = m.status;
    head.appendChild(who);
    head.appendChild(pill2);
    var text = document.createElement("p");
    text.className = "text";
    text.textContent = m.text;
    var at = document.createElement("p");
    at.className = "muted";
    at.textContent = m.at;
    item.appendChild(head);
    item.appendChild(text);
    item.appendChild(at);
    list.insertBefore(item, list.firstChild);
    var none = document.getElementById("no-messages");
    if (none) { none.remove(); }
  }

  // Calls of the line's page: the table's status, and (set by the call panel below) what an
  // incoming call does.
  var onCall = null;
  function applyCall(c) {
    var cell = $('#call-' + c.id + ' [data-role="call-status"]');
    if (cell) { cell.textContent = c.status + (c.end_reason ? " (" + c.end_reason + ")" : ""); }
    if (onCall) { onCall(c); }
  }

  if (body.dataset.live && window.EventSource) {
    var url = "/dashboard/events" + (body.dataset.line ? "?line=" + encodeURIComponent(body.dataset.line) : "");
    var source = new EventSource(url);
    source.addEventListener("line", function (ev) { applyLine(JSON.parse(ev.data)); });
    source.addEventListener("message", function (ev) { applyMessage(JSON.parse(ev.data)); });
    source.addEventListener("call", function (ev) { applyCall(JSON.parse(ev.data)); });
    body.dataset.liveConnected = "pending";
    source.onopen = function () { body.dataset.liveConnected = "yes"; };
  }

  // Click-to-call: place the call, then carry the microphone and the speaker over the
  // call's media socket: 20 ms frames of 16-bit little-endian mono PCM at 16 kHz. The panel
  // counts the frames each way (data-frames-out, data-frames-in).
  var callForm = document.getElementById("call-form");
  if (callForm) {
    var RATE = 16000, FRAME = 320;
    var panel = document.getElementById("call-panel");
    var state = document.getElementById("call-state");
    var hangup = document.getElementById("call-hangup");
    var answer = document.getElementById("call-answer");
    var reject = document.getElementById("call-reject");
    var ringing = null;
    var call = null, socket = null, audio = null, mic = null, playAt = 0, tries = 0;
    var framesIn = 0, framesOut = 0, micRefused = false;
    var NO_MIC = "Connected (no microphone allowed: you can listen)";

    function say(text) { state.textContent = text; }
    function count() { panel.dataset.framesIn = framesIn; panel.dataset.framesOut = framesOut; }

    function stopAudio() {
      if (socket) { try { socket.close(); } catch (e) { /* closed */ } socket = null; }
      if (mic) { mic.getTracks().forEach(function (t) { t.stop(); }); mic = null; }
      if (audio) { audio.close(); audio = null; }
    }

    function play(buffer) {
      var pcm = new Int16Array(buffer);
      var frame = audio.createBuffer(1, pcm.length, RATE);
      var data = frame.getChannelData(0);
      for (var i = 0; i < pcm.length; i++) { data[i] = pcm[i] / 32768; }
      var node = audio.createBufferSource();
      node.buffer = frame;
      node.connect(audio.destination);
      playAt = Math.max(playAt, audio.currentTime + 0.06);
      node.start(playAt);
      playAt += frame.duration;
    }

    // The microphone, cut into frames that go out while the socket is open. Asked for when
    // the call is placed, so the permission prompt comes before the other side answers.
    function startMic() {
      micRefused = false;
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { micRefused = true; return; }
      navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } }).then(function (stream) {
        if (!audio) { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
        mic = stream;
        var input = audio.createMediaStreamSource(stream);
        var proc = audio.createScriptProcessor(1024, 1, 1);
        var pending = new Int16Array(FRAME), filled = 0;
        proc.onaudioprocess = function (ev) {
          var samples = ev.inputBuffer.getChannelData(0);
          for (var i = 0; i < samples.length; i++) {
            var v = Math.max(-1, Math.min(1, samples[i]));
            pending[filled++] = v < 0 ? v * 32768 : v * 32767;
            if (filled === FRAME) {
              if (socket && socket.readyState === 1) { socket.send(pending.buffer.slice(0)); framesOut++; count(); }
              filled = 0;
            }
          }
        };
        input.connect(proc);
        // A processor only runs when connected onwards; it writes silence.
        proc.connect(audio.destination);
      }, function () {
        micRefused = true;
        panel.dataset.microphone = "refused";
        if (socket && socket.readyState === 1) { say(NO_MIC); }
      });
    }

    function connect() {
      if (!call || !call.media_url) { return; }
      var target = new URL(call.media_url);
      var ws = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + target.pathname + target.search;
      var opened = false;
      var me = new WebSocket(ws);
      socket = me;
      me.binaryType = "arraybuffer";
      me.onopen = function () {
        opened = true;
        playAt = 0;
        // The microphone may still be on its way (its frames go out once it is there).
        say(micRefused ? NO_MIC : "Connected");
      };
      me.onmessage = function (ev) {
        if (audio && ev.data instanceof ArrayBuffer) { play(ev.data); framesIn++; count(); }
      };
      me.onclose = function () {
        // A socket closed by a hang-up says nothing about the call that may follow it.
        if (socket !== me) { return; }
        socket = null;
        if (opened) { say("Call ended"); stopAudio(); hangup.hidden = true; return; }
        // Not answered yet: the socket opens once the other side picks up.
        if (call && tries++ < 90) { window.setTimeout(connect, 1000); } else if (call) { say("No answer"); }
      };
    }

    function post(url, fields) {
      var form = new URLSearchParams(fields);
      form.set("csrf", csrf());
      return fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: form.toString()
      });
    }

    callForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      stopAudio();
      framesIn = 0; framesOut = 0; count();
      panel.hidden = false;
      hangup.hidden = false;
      say("Calling…");
      // Made inside the click, so the browser lets it play.
      audio = new (window.AudioContext || window.webkitAudioContext)({ sampleRate: RATE });
      startMic();
      post(callForm.action, { to: document.getElementById("call-to").value.trim() })
        .then(function (r) { return r.ok ? r.json() : r.text().then(function (t) { throw new Error(t); }); })
        .then(function (c) { call = c; tries = 0; panel.dataset.call = c.id; say("Ringing…"); connect(); })
        .catch(function () { say("The call could not be placed"); hangup.hidden = true; stopAudio(); });
    });

    // An inbound call rings: offer to answer it (with audio) or reject it.
    function showIncoming(visible) {
      answer.hidden = !visible;
      reject.hidden = !visible;
    }
    onCall = function (c) {
      if (c.direction === "inbound" && c.status === "ringing" && !call && !ringing) {
        ringing = c;
        panel.hidden = false;
        hangup.hidden = true;
        showIncoming(true);
        say("Incoming call from " + (c.from || "an unknown number"));
      } else if (ringing && ringing.id === c.id && c.status !== "ringing") {
        ringing = null;
        showIncoming(false);
        if (c.status === "ended" && !call) { say("Call ended (" + (c.end_reason || "ended") + ")"); }
      }
    };
    answer.addEventListener("click", function () {
      if (!ringing) { return; }
      var incoming = ringing;
      ringing = null;
      showIncoming(false);
      stopAudio();
      framesIn = 0; framesOut = 0; count();
      audio = new (window.AudioContext || window.webkitAudioContext)({ sampleRate: RATE });
      startMic();
      say("Answering…");
      post("/dashboard/calls/" + encodeURIComponent(incoming.id) + "/accept", {})
        .then(function (r) { return r.ok ? r.json() : r.text().then(function (t) { throw new Error(t); }); })
        .then(function (c) { call = c; tries = 0; panel.dataset.call = c.id; hangup.hidden = false; connect(); })
        .catch(function () { say("The call could not be answered"); stopAudio(); });
    });
    reject.addEventListener("click", function () {
      if (!ringing) { return; }
      var incoming = ringing;
      ringing = null;
      showIncoming(false);
      post("/dashboard/calls/" + encodeURIComponent(incoming.id) + "/reject", {})
        .then(function () { say("Call rejected"); })
        .catch(function () { say("Could not reject; try again"); });
    });

    hangup.addEventListener("click", function () {
      if (!call) { return; }
      var ending = call;
      call = null;
      post("/dashboard/calls/" + encodeURIComponent(ending.id) + "/hangup", {})
        .then(function () { say("Call ended"); })
        .catch(function () { say("Could not hang up; try again"); });
      stopAudio();
      hangup.hidden = true;
    });
  }
})();
