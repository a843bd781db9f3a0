// Run in the report after load (tests/e2e/test_report_browser.py): every way a
// section's content can leave its card, or chart labels overlap, as lines in <pre>.
(function () {
  const tol = 1, problems = [];
  const label = (el) => el.tagName.toLowerCase() + ' "' + (el.textContent || '').trim().slice(0, 30) + '"';
  // an ancestor below the card that scrolls or clips keeps what is inside it in the card
  const contained = (el, card) => {
    for (let a = el.parentElement; a && a !== card; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    }
    return false;
  };
  for (const card of document.querySelectorAll('section')) {
    const box = card.getBoundingClientRect();
    if (card.scrollWidth > card.clientWidth + tol) {
      problems.push(card.id + ': content is ' + card.scrollWidth + ' px wide in a ' + card.clientWidth + ' px card');
    }
    for (const el of card.querySelectorAll('*')) {
      if (contained(el, card)) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right > box.right + tol || r.left < box.left - tol) {
        problems.push(card.id + ': ' + label(el) + ' reaches ' + Math.round(r.right) + ' px, its card ends at ' + Math.round(box.right));
      }
    }
  }
  for (const svg of document.querySelectorAll('section svg')) {
    const s = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map((t) => [t.textContent, t.getBoundingClientRect()]);
    for (const [text, r] of texts) {
      if (r.left < s.left - tol || r.right > s.right + tol) problems.push('chart label cut off: ' + text);
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const [a, p] = texts[i], [b, q] = texts[j];
        const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
        const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
        if (w > 2 && h > 2) problems.push('chart labels overlap: ' + a + ' / ' + b);
      }
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + tol) {
    problems.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px');
  }
  const out = document.createElement('pre');
  out.id = 'layout-problems';
  out.textContent = JSON.stringify(problems);
  document.body.appendChild(out);
})();
