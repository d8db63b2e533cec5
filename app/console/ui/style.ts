/** The console's styles: system fonts, AA contrast (text #1a1a1a on white, links #0b5cad), visible focus. */
export const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1a1a1a;background:#fff}
header{background:#16213a;color:#fff;padding:.6rem 1rem}
header nav{display:flex;gap:1.2rem;align-items:center;max-width:1240px;margin:auto}
header a,header .link{color:#fff}
header a[aria-current=page]{text-decoration:underline 2px}
main{max-width:1240px;margin:1rem auto;padding:0 1rem}
main.narrow{max-width:380px;margin-top:4rem}
a{color:#0b5cad}
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #767676;border-radius:4px;min-width:12rem}
button{font:inherit;padding:.4rem .9rem;border-radius:4px;border:1px solid #16213a;background:#16213a;color:#fff;cursor:pointer;margin-top:.6rem}
button.danger{background:#a4161a;border-color:#a4161a}
button.link{background:none;border:none;text-decoration:underline;padding:0;margin:0 0 0 auto}
button[disabled]{opacity:.6;cursor:wait}
.filters{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:end}
.filters label{margin:0}
.filters>*{flex:0 0 auto}
.filters input,.filters select{min-width:9rem}
.filters input{width:10rem}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
caption{text-align:left;color:#454545;padding:.3rem 0}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #d0d0d0}
.status{padding:.05rem .4rem;border-radius:3px;background:#e8f1e8;color:#14532d}
.status.suspended{background:#fff4d6;color:#6b4500}
.status.deleted{background:#fde2e2;color:#7f1d1d}
.error{color:#a4161a;min-height:1.2em}
.notice{color:#14532d}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dt{font-weight:600}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.step{font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
.card{border:1px solid #d0d0d0;border-radius:6px;padding:.8rem 1rem}
.acting{background:#fff4d6;color:#4a3000;border-bottom:2px solid #6b4500;padding:.3rem 1rem}
.acting p{max-width:1240px;margin:.2rem auto}
.acting button{margin:0 0 0 .8rem}
.wide{width:min(40rem,100%)}
.act-as-view{max-height:20rem;overflow:auto;background:#f4f4f4;padding:.6rem}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#454545}
.charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1rem}
.chart{margin:0;border:1px solid #d0d0d0;border-radius:6px;padding:.6rem .8rem}
.chart-canvas{width:100%;min-height:180px}
button.small{padding:.15rem .6rem;margin:.3rem 0;font-size:.9em}
table.figures{font-size:.9em}
fieldset.ranges{border:none;padding:0;margin:.2rem 0;display:flex;gap:1rem;align-items:center}
fieldset.ranges legend{font-weight:600;float:left;margin-right:.6rem}
label.inline{display:inline-flex;gap:.3rem;align-items:center;font-weight:400;margin:0}
label.inline input{min-width:0}
.empty{padding:1rem;border:1px dashed #767676;border-radius:6px}
ul.advice li{margin:.3rem 0}
a.button{display:inline-block;padding:.3rem .8rem;border-radius:4px;background:#16213a;color:#fff;text-decoration:none}
.placement{margin:1rem 0}
ul.findings li{margin:.4rem 0}
.fix{color:#14532d}
meter{width:5rem;margin-left:.4rem;vertical-align:middle}
`;
