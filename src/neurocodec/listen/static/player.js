"use strict";
// Gap-free A/B/... switching with the Web Audio API.
//
// Every stimulus of a trial is decoded into an AudioBuffer.  Playback starts one looping
// AudioBufferSourceNode per stimulus, all at the same context time and offset with the same
// loop region, each through its own GainNode; only the selected stimulus's gain is 1.  The
// sources therefore stay sample-locked, and switching is a 5 ms gain crossfade: no gap, no jump
// in position.  Moving the loop region or the playhead restarts all sources together.

const FADE_S = 0.005;

class MushraPlayer {
  constructor(ctx, buffers) {
    this.ctx = ctx;
    this.buffers = buffers;              // {key: AudioBuffer}, every one the same length
    const any = Object.values(buffers)[0];
    this.duration = any.duration;
    this.loopStart = 0;
    this.loopEnd = this.duration;
    this.selected = null;
    this.nodes = null;                   // {key: {src, gain}} while playing
    this.t0 = 0; this.offset0 = 0;       // context time and buffer offset at which sources started
    this.paused = 0;                     // position while stopped
    this.onchange = () => {};
  }

  get playing() { return this.nodes !== null; }

  position() {
    if (!this.playing) return this.paused;
    const len = this.loopEnd - this.loopStart;
    let p = this.offset0 + Math.max(0, this.ctx.currentTime - this.t0);
    if (p >= this.loopEnd) p = this.loopStart + ((p - this.loopStart) % len);
    return p;
  }

  _start(offset) {
    const when = this.ctx.currentTime + 0.03;
    const nodes = {};
    for (const [key, buf] of Object.entries(this.buffers)) {
      const src = this.ctx.createBufferSource();
      src.buffer = buf;
      src.loop = true;
      src.loopStart = this.loopStart;
      src.loopEnd = this.loopEnd;
      const gain = this.ctx.createGain();
      gain.gain.value = key === this.selected ? 1 : 0;
      src.connect(gain).connect(this.ctx.destination);
      src.start(when, offset);
      nodes[key] = {src, gain};
    }
    this.nodes = nodes;
    this.t0 = when;
    this.offset0 = offset;
  }

  _halt() {
    if (!this.nodes) return;
    for (const {src, gain} of Object.values(this.nodes)) {
      try { src.stop(); } catch (e) { /* already stopped */ }
      src.disconnect(); gain.disconnect();
    }
    this.nodes = null;
  }

  _clamp(p) {
    return (p < this.loopStart || p >= this.loopEnd) ? this.loopStart : p;
  }

  async play(key) {
    if (this.ctx.state !== "running") await this.ctx.resume();
    const prev = this.selected;
    this.selected = key;
    if (!this.playing) {
      this._start(this._clamp(this.paused));
    } else if (prev !== key) {
      const t = this.ctx.currentTime;
      for (const [k, {gain}] of Object.entries(this.nodes)) {
        const target = k === key ? 1 : 0;
        gain.gain.cancelScheduledValues(t);
        gain.gain.setValueAtTime(gain.gain.value, t);
        gain.gain.linearRampToValueAtTime(target, t + FADE_S);
      }
    }
    this.onchange();
  }

  stop() {
    this.paused = this.position();
    this._halt();
    this.onchange();
  }

  seek(p) {
    p = Math.min(Math.max(p, this.loopStart), this.loopEnd - 1e-3);
    if (this.playing) { this._halt(); this._start(p); } else { this.paused = p; }
    this.onchange();
  }

  setLoop(a, b) {
    if (b - a < 0.25) return false;      // keep at least 250 ms
    const p = this.position();
    this.loopStart = a; this.loopEnd = b;
    if (this.playing) { this._halt(); this._start(this._clamp(p)); } else { this.paused = this._clamp(p); }
    this.onchange();
    return true;
  }

  close() { this._halt(); }
}

window.MushraPlayer = MushraPlayer;
