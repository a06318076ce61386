// The HMI's shell: session, language, the page registry and the API helper.
// A screen is one ES module under pages/ exporting `strings` and
// `render(root, app)` (which may return a cleanup function); register it in
// `pages` below with the roles that see it. No build step.
import { strings as common } from './i18n.js';

const pages = [
  { id: 'overview', nav: 'nav_overview', roles: ['operator', 'qa', 'engineer', 'admin', 'inspector'], load: () => import('./pages/overview.js') },
  { id: 'batch', nav: 'nav_batch', roles: ['operator'], load: () => import('./pages/batch.js') },
  { id: 'station', nav: 'nav_station', roles: ['operator'], load: () => import('./pages/station.js') },
  { id: 'rework', nav: 'nav_rework', roles: ['operator'], load: () => import('./pages/rework.js') },
  { id: 'pools', nav: 'nav_pools', roles: ['operator'], load: () => import('./pages/pools.js') },
  { id: 'qa', nav: 'nav_qa', roles: ['qa', 'admin', 'inspector'], load: () => import('./pages/qa.js') },
  { id: 'qalookup', nav: 'nav_qalookup', roles: ['operator', 'qa', 'engineer', 'admin', 'inspector'], load: () => import('./pages/qalookup.js') },
  { id: 'accounts', nav: 'nav_accounts', roles: ['admin'], load: () => import('./pages/accounts.js') },
  { id: 'engineer', nav: 'nav_engineer', roles: ['engineer', 'admin'], load: () => import('./pages/engineer.js') },
  { id: 'login', public: true, load: () => import('./pages/login.js') },
  { id: 'setup', public: true, load: () => import('./pages/setup.js') },
];

const app = {
  lang: localStorage.getItem('lang') || 'zh',
  session: null,
  table: {},
  t(key, ...args) {
    let s = this.table[this.lang]?.[key] ?? this.table.zh?.[key] ?? key;
    args.forEach((a, i) => { s = s.replace('{' + i + '}', a); });
    return s;
  },
  addStrings(st) {
    for (const l of ['zh', 'en']) this.table[l] = { ...(this.table[l] || {}), ...(st?.[l] || {}) };
  },
  // api calls /api/v1: JSON in and out, the CSRF token on every write.
  // It throws {code, message, status} on errors (message already in the
  // user's language).
  async api(method, path, body) {
    const headers = { 'Accept-Language': this.lang };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && this.session) headers['X-CSRF-Token'] = this.session.csrf;
    let res;
    try {
      res = await fetch('/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
    } catch (e) {
      throw { code: 'network', message: this.t('error_network'), status: 0 };
    }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      if (res.status === 401 && this.session && path !== '/session') {
        this.session = null;
        go('login');
      }
      throw { code: data.code || 'http', message: data.message || res.statusText, status: res.status };
    }
    return data;
  },
  toast(msg, kind = 'error') {
    const el = document.getElementById('toast');
    el.textContent = msg;
    el.className = 'toast ' + kind;
    el.hidden = false;
    clearTimeout(this._toast);
    this._toast = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 3000);
  },
  // confirm shows a modal with a title, body (text or nodes) and the
  // confirm button's label; resolves true or false.
  confirm(title, body, label) {
    const d = document.getElementById('dialog');
    d.replaceChildren(el('h2', {}, title), typeof body === 'string' ? el('p', {}, body) : body,
      el('div', { class: 'row end' },
        el('button', { class: 'btn', type: 'button', 'data-act': 'cancel' }, this.t('cancel')),
        el('button', { class: 'btn danger', type: 'button', 'data-act': 'ok' }, label || this.t('confirm'))));
    return new Promise((resolve) => {
      d.onclick = (e) => {
        const act = e.target.closest('button')?.dataset.act;
        if (!act) return;
        d.close();
        resolve(act === 'ok');
      };
      d.showModal();
    });
  },
  go: (id, arg) => go(id, arg),
  el: (...a) => el(...a),
};

// el builds an element: el('div', {class: 'x', onclick: f}, child, 'text').
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}

let cleanup = null;

function go(id, arg) {
  const h = '#/' + id + (arg ? '/' + arg : '');
  if (location.hash !== h) location.hash = h; else route();
}

async function route() {
  const [, id = '', arg = ''] = location.hash.split('/');
  let page = pages.find((p) => p.id === id);
  if (!page?.public && !app.session) {
    try { app.session = await app.api('GET', '/session'); } catch { app.session = null; }
  }
  if (!page?.public && !app.session) page = pages.find((p) => p.id === 'login');
  if (!page) page = pages.find((p) => p.id === 'overview');
  if (!page.public && !page.roles.some((r) => app.session.user.roles.includes(r))) page = pages.find((p) => p.roles?.some((r) => app.session.user.roles.includes(r)));
  if (cleanup) { cleanup(); cleanup = null; }
  const mod = await page.load();
  app.addStrings(mod.strings);
  chrome(page.id);
  const root = document.getElementById('view');
  root.replaceChildren();
  root.dataset.page = page.id;
  cleanup = (await mod.render(root, app, arg)) || null;
}

// chrome draws the header: demo banner, navigation, user, language.
function chrome(current) {
  const s = app.session;
  document.documentElement.lang = app.lang === 'en' ? 'en' : 'zh-CN';
  const demo = document.getElementById('demo');
  demo.textContent = app.t('demo');
  demo.hidden = !(s?.demo || app.demoHint);
  const nav = document.getElementById('nav');
  nav.replaceChildren(...(s ? pages.filter((p) => !p.public && p.roles.some((r) => s.user.roles.includes(r))).map((p) =>
    el('a', { href: '#/' + p.id, class: p.id === current ? 'on' : '' }, app.t(p.nav))) : []));
  document.getElementById('who').textContent = s ? `${s.user.name} · ${s.user.roles.map((r) => app.t('role_' + r)).join(', ')}` : '';
  const lo = document.getElementById('logout');
  lo.hidden = !s;
  lo.textContent = app.t('logout');
  document.getElementById('lang').textContent = app.t('lang_switch');
}

app.addStrings(common);
document.getElementById('lang').addEventListener('click', () => {
  app.lang = app.lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('lang', app.lang);
  document.cookie = 'lang=' + app.lang + '; path=/; SameSite=Strict';
  route();
});
document.getElementById('logout').addEventListener('click', async () => {
  try { await app.api('DELETE', '/session'); } catch { /* gone already */ }
  app.session = null;
  go('login');
});
document.cookie = 'lang=' + app.lang + '; path=/; SameSite=Strict';
window.addEventListener('hashchange', route);
fetch('/api/v1/setup').then((r) => r.json()).then((s) => { app.demoHint = s.demo; chrome(''); }).catch(() => {});
route();
