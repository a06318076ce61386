// Strings shared by every page, Chinese first. A page module exports its
// own `strings` ({zh: {...}, en: {...}}); app.js merges them.
export const strings = {
  zh: {
    demo: '演示模式 DEMO — 模拟产线，数据不用于生产',
    logout: '退出登录', lang_switch: 'EN', confirm: '确认', cancel: '取消', ok: '确定',
    nav_overview: '产线总览', nav_accounts: '账户',
    nav_batch: '开批', nav_station: '人工关联', nav_rework: '返工', nav_pools: '码池',
    nav_qa: '批次与放行', nav_qalookup: '查码追溯',
    nav_engineer: '工程调试',
    role_operator: '操作员', role_qa: '质量', role_engineer: '工程师', role_admin: '管理员', role_inspector: '检查员',
    error_network: '无法连接控制器',
  },
  en: {
    demo: 'DEMO — simulated line, not production data',
    logout: 'Log out', lang_switch: '中文', confirm: 'Confirm', cancel: 'Cancel', ok: 'OK',
    nav_overview: 'Line overview', nav_accounts: 'Accounts',
    nav_batch: 'New batch', nav_station: 'Packing station', nav_rework: 'Rework', nav_pools: 'Code pools',
    nav_qa: 'Batches & release', nav_qalookup: 'Code lookup',
    nav_engineer: 'Engineering',
    role_operator: 'Operator', role_qa: 'QA', role_engineer: 'Engineer', role_admin: 'Admin', role_inspector: 'Inspector',
    error_network: 'cannot reach the controller',
  },
};
