// Helpers shared by the operator's screens (batch, pools, station, rework):
// their stylesheet, a beep without an audio asset, live overviews, and the
// line's stable reason codes in words.
export const strings = {
  zh: {
    op_live_wait: '等待产线数据…',
    sr_unreadable: '无法识别的码', 'sr_not-ours': '不是本账本的码', sr_foreign: '其他批次或产品的码', 'sr_wrong-level': '级别不对',
    sr_duplicate: '已扫描过（重复）', sr_packed: '已装入其他包装', 'sr_not-commissioned': '未激活或已停用的码', 'sr_parent-used': '该包装码已使用',
    'sr_no-parent': '请先扫描包装码', 'sr_parent-open': '已有打开的包装：请先关闭或取消', 'sr_no-batch': '产线上没有批次',
    'sr_label-pending': '请先贴上新打印的包装标签并扫描它',
  },
  en: {
    op_live_wait: 'waiting for the line…',
    sr_unreadable: 'not a readable code', 'sr_not-ours': 'not a code of this ledger', sr_foreign: 'a code of another batch or product', 'sr_wrong-level': 'wrong level',
    sr_duplicate: 'scanned already (duplicate)', sr_packed: 'already packed in a parent', 'sr_not-commissioned': 'not commissioned, or out of circulation', 'sr_parent-used': 'this parent code is used already',
    'sr_no-parent': 'scan a parent first', 'sr_parent-open': 'a parent is open: close or cancel it first', 'sr_no-batch': 'no batch on the line',
    'sr_label-pending': 'apply the newly printed parent label and scan it first',
  },
};

// merge joins string tables ({zh, en}).
export function merge(...tables) {
  const out = { zh: {}, en: {} };
  for (const t of tables) for (const l of ['zh', 'en']) Object.assign(out[l], t[l] || {});
  return out;
}

// css loads the operator screens' stylesheet once.
export function css() {
  if (document.getElementById('ops-css')) return;
  const l = document.createElement('link');
  l.id = 'ops-css';
  l.rel = 'stylesheet';
  l.href = '/static/pages/ops.css';
  document.head.append(l);
}

let ctx = null;
// beep: a short high tone for a good scan, a low double buzz for a refusal.
export function beep(ok) {
  try {
    ctx = ctx || new (window.AudioContext || window.webkitAudioContext)();
    const tones = ok ? [[1760, 0, 0.09]] : [[220, 0, 0.18], [220, 0.24, 0.18]];
    for (const [f, at, d] of tones) {
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.type = ok ? 'sine' : 'square';
      o.frequency.value = f;
      g.gain.value = 0.2;
      o.connect(g).connect(ctx.destination);
      o.start(ctx.currentTime + at);
      o.stop(ctx.currentTime + at + d);
    }
  } catch { /* no audio: the colour and the words still say it */ }
}

// live calls draw with the line's overview now and at every change; it
// returns the function that stops it.
export function live(app, draw) {
  app.api('GET', '/line').then(draw).catch((e) => app.toast(e.message));
  const es = new EventSource('/api/v1/line/live');
  es.addEventListener('overview', (e) => draw(JSON.parse(e.data)));
  return () => es.close();
}

// field builds a labelled input with its own error line below it.
export function field(el, label, input) {
  const err = el('div', { class: 'ferr' });
  return { box: el('label', { class: 'fld' }, el('span', {}, label), input, err), input, err };
}
