// demo.mjs: the demo page of walloc's WebAssembly build. Allocates in each
// tier, shows their statistics in a table that a frame loop keeps updating,
// writes and reads a block through a typed-array view, and loads the files of
// assets/ with loadAsset and loadAssetsBatch into the C registry.
//
// When everything has run: <html data-ready="1"> and globalThis.wallocDemo
// holds the results. On any error: the error is shown on the page,
// <html data-ready="error">, and globalThis.wallocDemoError holds it.
import { createWalloc, Tier, AssetType } from './walloc.mjs';

const $ = (id) => document.getElementById(id);
const TIERS = ['render', 'scene', 'entity', 'fallback'];
const FIELDS = ['capacity', 'used', 'peak', 'allocations', 'deallocations', 'resets', 'generation'];
const TYPE_NAMES = Object.fromEntries(Object.entries(AssetType).map(([k, v]) => [v, k.toLowerCase()]));
const fmt = (n) => n.toLocaleString('en-US');
const ENTITY_BYTES = 256;
const WARMUP_FRAMES = 30;

function fail(e) {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  globalThis.wallocDemoError = text;
  const box = $('error');
  box.textContent = text;
  box.classList.add('shown');
  $('status').textContent = 'failed';
  document.documentElement.dataset.ready = 'error';
  console.error('walloc demo:', e);
}
addEventListener('error', (ev) => fail(ev.error ?? ev.message));
addEventListener('unhandledrejection', (ev) => fail(ev.reason));

function buildStatsTable() {
  const body = $('tier-stats').tBodies[0];
  for (const t of TIERS) {
    const tr = body.insertRow();
    tr.dataset.tier = t;
    tr.insertCell().textContent = t;
    for (const f of FIELDS) {
      const td = tr.insertCell();
      td.dataset.field = f;
    }
  }
}

function updateStatsTable(w) {
  const stats = w.stats();
  for (const t of TIERS) {
    const row = $('tier-stats').querySelector(`tr[data-tier="${t}"]`);
    for (const f of FIELDS) {
      const td = row.querySelector(`td[data-field="${f}"]`);
      td.textContent = fmt(stats.tiers[t][f]);
      td.dataset.value = String(stats.tiers[t][f]);
    }
  }
  return stats;
}

// Writes a sine wave into a scene block through a Float32Array view, reads
// it back as bytes with readData, and checks both agree.
function typedArrayRoundTrip(w) {
  const n = 64;
  const h = w.allocate(n * 4, Tier.SCENE);
  const v = w.view(h, Float32Array, 0, n);
  for (let i = 0; i < n; i++) v[i] = Math.sin(i / 4);
  const back = new Float32Array(w.readData(h, 0, n * 4).buffer);
  for (let i = 0; i < n; i++) {
    if (back[i] !== Math.fround(Math.sin(i / 4))) throw new Error(`view round trip: element ${i} reads ${back[i]}`);
  }
  const sum = back.reduce((a, b) => a + b, 0);
  $('view-result').innerHTML = '';
  const lines = [
    `handle <code>0x${h.toString(16)}</code> (scene tier, ${fmt(w.handleSize(h))} usable bytes)`,
    `wrote ${n} floats via <code>view(h, Float32Array)</code>`,
    `read back ${n * 4} bytes with <code>readData</code>: match`,
    `first: ${Array.from(back.slice(0, 4), (x) => x.toFixed(3)).join(', ')} … sum ${sum.toFixed(4)}`,
  ];
  $('view-result').innerHTML = `<ul>${lines.map((l) => `<li>${l}</li>`).join('')}</ul>`;
  return { handle: h, count: n, sum };
}

async function loadAssets(w) {
  w.setBaseUrl(new URL('assets/', location.href).href);
  const single = await w.loadAsset('config.json', AssetType.JSON);
  const batch = await w.loadAssetsBatch([
    { path: 'checker.rgba', type: AssetType.TEXTURE },
    { path: 'quad.mesh', type: AssetType.MESH },
    { path: 'basic.frag.glsl', type: AssetType.SHADER },
  ]);
  const failed = batch.filter((r) => !r.ok);
  if (failed.length) throw new Error(`loadAssetsBatch: ${failed.map((r) => `${r.path}: ${r.error.message}`).join('; ')}`);
  const results = [single, ...batch];

  // The registry answers for every path, and the bytes are in the blocks.
  const config = JSON.parse(new TextDecoder().decode(w.readData(single.handle, 0, single.size)));
  const tex = w.getAsset('checker.rgba');
  const pixels = new Uint8ClampedArray(w.readData(tex.handle, 0, tex.size));
  $('texture').getContext('2d').putImageData(new ImageData(pixels, 16, 16), 0, 0);
  const mesh = w.getAsset('quad.mesh');
  const verts = w.readData(mesh.handle, 0, mesh.size);
  const shader = new TextDecoder().decode(w.readData(w.getAsset('basic.frag.glsl').handle, 0, w.getAsset('basic.frag.glsl').size));
  $('asset-details').innerHTML = `<ul>
    <li>config.json: scene “${config.scene}”, ${config.entities} entities</li>
    <li>quad.mesh: ${verts.length / 16} vertices</li>
    <li>basic.frag.glsl: ${shader.split('\n').filter(Boolean).length} lines</li></ul>`;
  return { results, config };
}

function updateAssetsTable(w, results) {
  const body = $('assets').tBodies[0];
  body.innerHTML = '';
  let live = 0;
  for (const r of results) {
    const md = w.getAsset(r.path);
    const ok = md !== null && md.handle === r.handle && w.handleSize(md.handle) >= r.size;
    live += ok ? 1 : 0;
    const tr = body.insertRow();
    tr.dataset.path = r.path;
    tr.dataset.live = ok ? '1' : '0';
    for (const text of [r.path, TYPE_NAMES[r.type], TIERS[r.tier], fmt(r.size), String(r.httpStatus), ok ? 'yes' : 'NO']) {
      tr.insertCell().textContent = text;
    }
  }
  return live;
}

async function main() {
  buildStatsTable();
  const w = await createWalloc();
  $('version').textContent = `walloc ${w.version()},`;
  updateStatsTable(w);

  // The assets first: textures, meshes and shaders live at the bottom of the
  // render tier, and each frame's scratch goes above them.
  const { results, config } = await loadAssets(w);
  updateAssetsTable(w, results);
  const assetWatermark = w.tierStats(Tier.RENDER).used;

  // One block in each tier at start: a scene buffer, the entities, a big
  // block that goes to the fallback tier.
  const view = typedArrayRoundTrip(w);
  const entities = w.allocateBatch(Array(config.entities).fill(ENTITY_BYTES), Tier.ENTITY);
  const big = w.allocate(256 * 1024, Tier.FALLBACK);
  w.view(big).fill(0xab);

  // The frame loop: render-tier scratch above the assets, dropped each frame
  // with fastCompactTier (the assets below the watermark survive); a few
  // entities die and are born each frame.
  let frame = 0;
  const tick = () => {
    const scratch = w.allocateBatch([config.frameScratchBytes, 4096, 4096, 1024], Tier.RENDER);
    w.view(scratch[0], Uint32Array).fill(frame);
    for (let k = 0; k < 4; k++) {
      const i = (frame * 4 + k) % entities.length;
      w.deallocate(entities[i]);
      entities[i] = w.allocate(ENTITY_BYTES, Tier.ENTITY);
      w.view(entities[i], Float32Array, 0, 4).set([frame, i, 0, 1]);
    }
    w.fastCompactTier(Tier.RENDER, assetWatermark);
    frame++;
    const stats = updateStatsTable(w);
    const live = updateAssetsTable(w, results);
    if (live !== results.length) throw new Error(`frame ${frame}: ${results.length - live} asset(s) lost their block`);
    $('frame-info').textContent = `frame ${fmt(frame)} · ${entities.length} live entities · linear memory ${fmt(stats.memoryBytes)} bytes · heap live ${fmt(stats.heap.liveBytes)} bytes`;
    return stats;
  };

  let stats;
  for (let i = 0; i < WARMUP_FRAMES; i++) stats = tick();
  const timer = setInterval(() => { try { tick(); } catch (e) { clearInterval(timer); fail(e); } }, 100);

  globalThis.wallocDemo = {
    version: w.version(),
    frames: WARMUP_FRAMES,
    stats,
    view,
    assets: results.map(({ path, size, tier, type, httpStatus }) => ({ path, size, tier, type, httpStatus })),
    stop: () => clearInterval(timer),
  };
  $('status').textContent = 'ready';
  $('status').classList.add('ok');
  document.documentElement.dataset.ready = '1';
}

main().catch(fail);
