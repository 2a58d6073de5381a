// Reader pages: getting an image from the camera or from a file, and handing it to the
// reader agent that served the page (never to the service: the agent seals it first).
"use strict";

(function () {
  const OP = window.OP;

  // Read a File as a data: URL.
  function readFile(file) {
    return new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.readAsDataURL(file);
    });
  }

  // A capture control in `root`: a file chooser (always) and the camera (where the browser
  // allows it). Every image goes to `onImage(dataUrl)`, which returns a promise; while it
  // runs, new images wait. With the camera, a frame is taken every `intervalMs` until
  // `stop()` is called or `onImage` resolves to "stop".
  OP.capture = function (root, { onImage, label, intervalMs, multiple }) {
    const id = "file-" + Math.random().toString(36).slice(2);
    const file = OP.el("input", { type: "file", id, accept: "image/png,image/jpeg,image/bmp", multiple: multiple || null, "data-testid": "capture-file" });
    const preview = OP.el("img", { class: "preview hidden", alt: "The last capture" });
    const video = OP.el("video", { class: "hidden", autoplay: true, muted: true, playsinline: true, "aria-label": "Camera preview" });
    const camBtn = OP.el("button", { type: "button", class: "secondary", "data-testid": "camera" }, "Use the camera");
    const state = { busy: false, stream: null, timer: null };

    async function hand(dataUrl) {
      if (state.busy) return;
      state.busy = true;
      // With the camera on, its live picture is the preview.
      if (!state.stream) {
        preview.src = dataUrl;
        preview.classList.remove("hidden");
      }
      try {
        const r = await onImage(dataUrl);
        if (r === "stop") stopCamera();
      } finally {
        state.busy = false;
      }
    }

    file.addEventListener("change", async () => {
      for (const f of Array.from(file.files || [])) {
        await hand(await readFile(f));
      }
      file.value = "";
    });

    function stopCamera() {
      if (state.timer) clearInterval(state.timer);
      state.timer = null;
      if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
      state.stream = null;
      video.classList.add("hidden");
      camBtn.textContent = "Use the camera";
    }

    camBtn.addEventListener("click", async () => {
      if (state.stream) { stopCamera(); return; }
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        camBtn.textContent = "No camera here: choose a photo";
        camBtn.disabled = true;
        return;
      }
      try {
        state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 960 } });
      } catch (e) {
        camBtn.textContent = "Camera not allowed: choose a photo";
        camBtn.disabled = true;
        return;
      }
      video.srcObject = state.stream;
      video.classList.remove("hidden");
      preview.classList.add("hidden");
      camBtn.textContent = "Stop the camera";
      const canvas = document.createElement("canvas");
      state.timer = setInterval(() => {
        if (state.busy || !video.videoWidth) return;
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        canvas.getContext("2d").drawImage(video, 0, 0);
        hand(canvas.toDataURL("image/jpeg", 0.92));
      }, intervalMs || 900);
    });

    root.replaceChildren(
      OP.el("div", { class: "capture" },
        video, preview,
        OP.el("div", { class: "row" },
          OP.el("div", {}, OP.el("label", { for: id }, label || "Choose a photo of the palm"), file),
          OP.el("div", {}, camBtn))));
    return { stop: stopCamera, file };
  };

  // What the reader captures: a whole hand or a palm-centre crop.
  OP.inputSelect = function (root, defaultInput) {
    const sel = OP.el("select", { id: "input-kind" },
      OP.el("option", { value: "hand" }, "Whole open hand (camera, phone photo)"),
      OP.el("option", { value: "roi" }, "Palm-centre crop (a reader that crops)"));
    sel.value = defaultInput || "hand";
    root.replaceChildren(OP.el("label", { for: "input-kind" }, "This reader captures"), sel);
    return sel;
  };

  // Ask the reader agent.
  OP.reader = (path, body) => OP.call(body === undefined ? "GET" : "POST", "/reader/" + path, { body });
})();
