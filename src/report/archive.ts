import type { ArchiveReport } from '../analyze/separate.js';
import { plural, table } from './format.js';
import { formatNumber } from '../numbers.js';

/** The archive summary of `--separate`: one row per input, the ones with stuck connections marked. */
export function renderArchiveSummary(archive: ArchiveReport, format: string): string {
  const { summary } = archive;
  const verdict = `${plural(summary.inputsWithCloseWait, 'input')} of ${formatNumber(summary.inputs)} with connections stuck in CLOSE_WAIT (${plural(summary.closeWait, 'connection')} in all)`;
  const header = ['input', 'packets', 'connections', 'CLOSE_WAIT', 'servers with stuck connections'];
  const rows = archive.archive.map((e) => [e.path, formatNumber(e.packets), formatNumber(e.connections), e.readable ? formatNumber(e.closeWait) : 'unreadable', e.servers.join(', ') || '-']);
  if (format === 'markdown') {
    const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
    const warnings = archive.warnings.length > 0 ? ['', '**Warnings:**', '', ...archive.warnings.map((w) => `- ${w}`)] : [];
    return [`# closewait archive summary`, '', verdict, '', line(header), line(header.map((_, column) => (column >= 1 && column <= 3 ? '---:' : '---'))), ...rows.map(line), ...warnings, ''].join('\n');
  }
  if (format === 'csv') return '';
  return [`Archive: ${verdict}`, ...table(header, rows), ...archive.warnings.map((w) => `! ${w}`), ''].join('\n');
}
