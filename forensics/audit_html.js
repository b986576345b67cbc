/* The script of `ptb audit --format html` (audit_html.c embeds it; audit_html.h): draws each
 * store's timeline as SVG from the JSON of its data element (class tl-data, never executed),
 * links the findings' evidence seqs to it, and copies `ptb query` commands. Every string comes
 * from the store, so it is only ever set with textContent or setAttribute on data attributes
 * and <title>: never parsed as HTML. No library, nothing fetched. */
(function () {
    'use strict';
    var NS = 'http://www.w3.org/2000/svg';
    var W = 1200, LABEL = 150, PW = W - LABEL - 10, ROW = 11;

    function svg(tag, attrs, parent) {
        var e = document.createElementNS(NS, tag);
        for (var k in attrs) e.setAttribute(k, String(attrs[k]));
        if (parent) parent.appendChild(e);
        return e;
    }
    function html(tag, cls, text, parent) {
        var e = document.createElement(tag);
        if (cls) e.className = cls;
        if (text !== undefined && text !== null) e.textContent = String(text);
        if (parent) parent.appendChild(e);
        return e;
    }
    function dur(us) {
        if (us < 1000) return us + ' µs';
        if (us < 1e6) return (us / 1000).toFixed(1) + ' ms';
        if (us < 6e7) return (us / 1e6).toFixed(2) + ' s';
        var s = Math.round(us / 1e6);
        return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    }
    /* Rows for items sorted by start: the first row free at x0, else a new one up to max, else
     * the row that frees first (drawn over). */
    function pack(items, x, max) {
        var ends = [], rows = [];
        items.forEach(function (it) {
            var a = x(it.t), b = Math.max(x(it.end === undefined ? it.t : it.end), a + 2), r = -1;
            for (var i = 0; i < ends.length; i++)
                if (ends[i] + 1 <= a) { r = i; break; }
            if (r < 0 && ends.length < max) r = ends.length;
            if (r < 0) {
                r = 0;
                for (var j = 1; j < ends.length; j++) if (ends[j] < ends[r]) r = j;
            }
            ends[r] = b;
            rows.push(r);
        });
        return {rows: rows, n: Math.max(ends.length, 1)};
    }

    function timeline(section, d) {
        var box = section.querySelector('.timeline');
        var detail = section.querySelector('.tl-detail');
        var span = Math.max(d.span_us, 1);
        var x = function (us) { return LABEL + Math.max(0, Math.min(us, span)) / span * PW; };
        var evSeq = {}, evExec = {};
        (d.evidence || []).forEach(function (e) {
            evSeq[e.seq] = e;
            if (e.exec) evExec[e.exec] = true;
        });
        var s = svg('svg', {viewBox: '0 0 ' + W + ' 100', width: '100%', 'class': 'tl-svg'});
        var y = 22, counts = {};
        function label(text, yy, cls) {
            var t = svg('text', {x: 4, y: yy + ROW - 2, 'class': cls || 'tl-label'}, s);
            t.textContent = text.length > 24 ? text.slice(0, 23) + '…' : text;
            svg('title', {}, t).textContent = text;
        }
        function more(n, what) {
            if (n > 0) {
                var t = svg('text', {x: W - 6, y: y + ROW - 2, 'class': 'tl-more', 'text-anchor': 'end'}, s);
                t.textContent = n + ' more ' + what + ' not shown';
                y += ROW + 2;
            }
        }
        function bar(cls, a, b, yy, tip, info, seq, hit) {
            var x0 = x(a), x1 = Math.max(x(b), x0 + 2);
            var r = svg('rect', {x: x0.toFixed(1), y: yy, width: (x1 - x0).toFixed(1),
                                 height: ROW - 2, 'class': cls + (hit ? ' hit' : '')}, s);
            if (seq !== undefined) r.setAttribute('data-seq', seq);
            svg('title', {}, r).textContent = tip;
            r.addEventListener('click', function () { detail.textContent = info || tip; });
            counts[cls] = (counts[cls] || 0) + 1;
            return r;
        }
        /* time axis */
        var step = Math.pow(10, Math.floor(Math.log10(span / 8)));
        [1, 2, 5, 10].some(function (m) { if (span / (step * m) <= 10) { step *= m; return true; } });
        for (var tk = 0; tk <= span; tk += step) {
            svg('line', {x1: x(tk), x2: x(tk), y1: 14, y2: 10000, 'class': 'tl-grid'}, s);
            svg('text', {x: x(tk), y: 10, 'class': 'tl-tick',
                         'text-anchor': x(tk) > W - 40 ? 'end' : 'middle'}, s).textContent = dur(tk);
        }
        /* phases */
        if ((d.phases || []).length) {
            label('phases', y);
            d.phases.forEach(function (p) {
                bar('tl-phase', p.t, p.end, y, p.name + ': ' + dur(p.end - p.t) + ' (seq ' + p.seq + ')', null, p.seq, false);
                var t = svg('text', {x: x(p.t) + 3, y: y + ROW - 3, 'class': 'tl-phase-name'}, s);
                t.textContent = p.name;
            });
            y += ROW + 4;
        }
        /* tool calls */
        var tools = d.tools || [];
        if (tools.length) {
            var pt = pack(tools, x, 6);
            label('tool calls (' + tools.length + ')', y);
            tools.forEach(function (c, i) {
                var end = c.end === undefined ? c.t : c.end;
                var tip = c.name + ' (seq ' + c.seq + (c.rseq ? ', result ' + c.rseq : '') + ', ' + dur(end - c.t) +
                    (c.error ? ', error' : '') + ')';
                bar('tl-tool' + (c.error ? ' err' : ''), c.t, end, y + pt.rows[i] * ROW, tip,
                    tip + '\n' + c.input, c.seq, evSeq[c.seq] || evSeq[c.rseq]);
            });
            y += pt.n * ROW + 4;
        }
        more(d.tools_more, 'tool calls');
        /* processes: the harness, then the others */
        [['harness', true], ['processes', false]].forEach(function (g) {
            var ps = (d.procs || []).filter(function (p) { return !!p.harness === g[1]; });
            if (!ps.length) return;
            var pp = pack(ps, x, g[1] ? 4 : 40);
            label(g[0] + ' (' + ps.length + ')', y);
            ps.forEach(function (p, i) {
                var how = p.exit === undefined ? 'no exit seen' : p.signal ? 'signal ' + p.signal : 'exit ' + p.exit;
                var tip = p.name + ' (exec_id ' + p.id + ', pid ' + p.pid + ', ' + dur(p.end - p.t) + ', ' + how + ')';
                bar('tl-proc' + (g[1] ? ' harness' : ''), p.t, p.end, y + pp.rows[i] * ROW, tip,
                    tip + '\nseq ' + p.seq + (p.xseq ? '..' + p.xseq : '') + '\n' + p.argv, p.seq,
                    evSeq[p.seq] || evSeq[p.xseq] || evExec[p.id]);
            });
            y += pp.n * ROW + 4;
        });
        more(d.procs_more, 'processes');
        /* network: one row per host (or destination) */
        var net = d.net || [], hosts = [], row = {};
        net.forEach(function (n) {
            var k = n.host || n.dst;
            if (!(k in row)) {
                row[k] = hosts.length < 24 ? hosts.length : 24;
                if (hosts.length < 25) hosts.push(hosts.length < 24 ? k : 'other hosts');
            }
        });
        hosts.forEach(function (h, i) { label(h, y + i * ROW, 'tl-label net'); });
        net.forEach(function (n) {
            var tip = n.what + ' ' + (n.host ? n.host + ' ' : '') + n.dst + ' (seq ' + n.seq + ', exec_id ' + n.exec + ')';
            bar('tl-net', n.t, n.end, y + row[n.host || n.dst] * ROW, tip, null, n.seq, evSeq[n.seq]);
        });
        if (hosts.length) y += hosts.length * ROW + 4;
        more(d.net_more, 'network events');
        /* GPU: launches summed per bucket; height is the busy fraction (or the launch count) */
        var g = d.gpu;
        if (g && g.kernels + g.copies > 0) {
            var H = 36, maxN = Math.max.apply(null, g.launches.concat([1]));
            var bw = PW / g.launches.length, bus = Math.max(g.bucket_us, 1);
            label('GPU (' + g.kernels + ' kernels)', y + H - ROW);
            g.launches.forEach(function (n, i) {
                if (!n && !g.copy_ops[i]) return;
                var f = g.busy_us[i] ? Math.min(g.busy_us[i] / bus, 1) : n / maxN;
                var h = Math.max(f * H, 1);
                var r = svg('rect', {x: (LABEL + i * bw).toFixed(1), y: (y + H - h).toFixed(1),
                                     width: Math.max(bw - 0.5, 0.5).toFixed(1), height: h.toFixed(1), 'class': 'tl-gpu'}, s);
                var tip = dur(i * bus) + '..' + dur((i + 1) * bus) + ': ' + n + ' kernels, ' + dur(g.busy_us[i]) +
                    ' busy, ' + g.copy_ops[i] + ' copies';
                svg('title', {}, r).textContent = tip;
                r.addEventListener('click', function () { detail.textContent = tip; });
                counts['tl-gpu'] = (counts['tl-gpu'] || 0) + 1;
            });
            y += H + 6;
        }
        /* evidence */
        var ev = d.evidence || [];
        if (ev.length) {
            label('evidence (' + ev.length + ')', y, 'tl-label ev');
            ev.forEach(function (e) {
                var rules = e.f.map(function (k) {
                    var f = section.querySelector('[data-finding="' + k + '"]');
                    return f ? f.getAttribute('data-rule') + ' (' + f.getAttribute('data-verdict') + ')' : '';
                });
                var tip = 'seq ' + e.seq + ' ' + e.type + ': ' + rules.join(', ');
                var p = svg('path', {d: 'M' + x(e.t).toFixed(1) + ' ' + y + 'l-4 ' + (ROW - 1) + 'h8z',
                                     'class': 'tl-ev', 'data-seq': e.seq}, s);
                svg('title', {}, p).textContent = tip;
                p.addEventListener('click', function () { detail.textContent = tip; });
                counts['tl-ev'] = (counts['tl-ev'] || 0) + 1;
            });
            y += ROW + 4;
        }
        more(d.evidence_more, 'evidence events');
        s.setAttribute('viewBox', '0 0 ' + W + ' ' + (y + 4));
        box.appendChild(s);
        var legend = html('p', 'tl-counts', null, box);
        [['tl-phase', 'phases'], ['tl-tool', 'tool calls'], ['tl-proc', 'processes'],
         ['tl-net', 'network events'], ['tl-gpu', 'GPU buckets'], ['tl-ev', 'evidence marks']]
            .forEach(function (c) {
                var n = s.querySelectorAll('.' + c[0]).length;
                var sp = html('span', 'count', n + ' ' + c[1] + ' drawn', legend);
                sp.setAttribute('data-lane', c[0]);
                sp.setAttribute('data-count', n);
            });
        if (!y || y === 22) html('p', 'tl-empty', 'The store has no events to draw.', box);
    }

    document.querySelectorAll('section.run').forEach(function (section) {
        var data = section.querySelector('script.tl-data');
        if (!data) return;
        try {
            timeline(section, JSON.parse(data.textContent));
        } catch (e) {
            html('p', 'tl-error', 'timeline: ' + e, section.querySelector('.timeline'));
        }
        /* a finding's seq: mark it on the timeline */
        section.querySelectorAll('a.seq').forEach(function (a) {
            a.addEventListener('click', function (ev) {
                ev.preventDefault();
                section.querySelectorAll('.sel').forEach(function (e) { e.classList.remove('sel'); });
                var seq = a.getAttribute('data-seq'), hits = 0;
                section.querySelectorAll('.timeline [data-seq="' + seq + '"]').forEach(function (e) {
                    e.classList.add('sel');
                    hits++;
                });
                a.classList.add('sel');
                section.querySelector('.tl-detail').textContent = 'seq ' + seq +
                    (hits ? ': marked on the timeline' : ': not drawn (over a lane\'s bound)');
                section.querySelector('.timeline').scrollIntoView({block: 'nearest'});
            });
        });
    });
    document.querySelectorAll('button.copy').forEach(function (b) {
        b.addEventListener('click', function () {
            var code = b.previousElementSibling, text = code.textContent;
            var done = function () { b.textContent = 'copied'; };
            if (navigator.clipboard && navigator.clipboard.writeText)
                navigator.clipboard.writeText(text).then(done, function () {});
            var r = document.createRange();
            r.selectNodeContents(code);
            var sel = window.getSelection();
            sel.removeAllRanges();
            sel.addRange(r);
        });
    });
    document.body.setAttribute('data-rendered', 'yes');
})();
