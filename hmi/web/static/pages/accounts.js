// Admin: accounts, roles, an inspector's time-limited access.
export const strings = {
  zh: { acc_title: '账户', acc_user: '用户名', acc_name: '姓名', acc_roles: '角色', acc_expires: '到期', acc_never: '长期', acc_new: '新建账户', acc_pw: '初始密码', acc_create: '创建', acc_inspector_hours: '检查员访问时长（小时）', acc_created: '账户已创建', acc_save_roles: '保存角色', acc_saved: '已保存', acc_disable: '停用', acc_by: '最后修改人' },
  en: { acc_title: 'Accounts', acc_user: 'User', acc_name: 'Name', acc_roles: 'Roles', acc_expires: 'Expires', acc_never: 'never', acc_new: 'New account', acc_pw: 'First password', acc_create: 'Create', acc_inspector_hours: 'Inspector access (hours)', acc_created: 'Account created', acc_save_roles: 'Save roles', acc_saved: 'Saved', acc_disable: 'Disable', acc_by: 'Last changed by' },
};
const roles = ['operator', 'qa', 'engineer', 'admin', 'inspector'];

export async function render(root, app) {
  const { el } = app;
  const t = app.t.bind(app);
  const list = el('tbody');
  async function load() {
    const users = await app.api('GET', '/accounts');
    list.replaceChildren(...users.map((u) => {
      const boxes = roles.filter((r) => r !== 'inspector').map((r) => el('label', { class: 'chk' }, el('input', { type: 'checkbox', value: r, checked: u.roles.includes(r), disabled: u.roles.includes('inspector') }), t('role_' + r)));
      const save = el('button', { class: 'btn', type: 'button', hidden: u.roles.includes('inspector') }, t('acc_save_roles'));
      save.addEventListener('click', async () => {
        const rs = boxes.map((b) => b.firstChild).filter((i) => i.checked).map((i) => i.value);
        try { await app.api('PUT', `/accounts/${encodeURIComponent(u.id)}/roles`, { roles: rs }); app.toast(t('acc_saved'), 'info'); load(); } catch (e) { app.toast(e.message); }
      });
      return el('tr', {}, el('td', {}, u.id), el('td', {}, u.name), el('td', {}, u.roles.includes('inspector') ? t('role_inspector') : boxes, save),
        el('td', {}, u.expires ? new Date(u.expires).toLocaleString() : t('acc_never')), el('td', {}, u.by));
    }));
  }
  const f = { user: el('input', { id: 'acc-user', required: true }), name: el('input', { id: 'acc-name', required: true }), password: el('input', { id: 'acc-pw', type: 'password', required: true, autocomplete: 'new-password' }),
    role: el('select', { id: 'acc-role' }, ...roles.map((r) => el('option', { value: r }, t('role_' + r)))), hours: el('input', { id: 'acc-hours', type: 'number', min: 1, max: 2160, value: 8 }) };
  const form = el('form', { class: 'card' }, el('h2', {}, t('acc_new')),
    el('div', { class: 'grid2' }, el('label', {}, t('acc_user'), f.user), el('label', {}, t('acc_name'), f.name), el('label', {}, t('acc_pw'), f.password),
      el('label', {}, t('acc_roles'), f.role), el('label', {}, t('acc_inspector_hours'), f.hours)),
    el('button', { class: 'btn primary', type: 'submit', id: 'acc-create' }, t('acc_create')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { user: f.user.value.trim(), name: f.name.value, password: f.password.value, roles: [f.role.value] };
    if (f.role.value === 'inspector') body.expires = new Date(Date.now() + f.hours.value * 3600e3).toISOString();
    try { await app.api('POST', '/accounts', body); app.toast(t('acc_created'), 'info'); form.reset(); load(); } catch (err) { app.toast(err.message); }
  });
  root.append(el('section', { class: 'card' }, el('h1', {}, t('acc_title')),
    el('table', { class: 'tbl' }, el('thead', {}, el('tr', {}, ...['acc_user', 'acc_name', 'acc_roles', 'acc_expires', 'acc_by'].map((k) => el('th', {}, t(k))))), list)), form);
  await load();
}
