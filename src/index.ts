/** The library entry point: analyse captures and render reports without shelling out. */
export { analyze, DEFAULT_MAX_CONNECTIONS, type AnalyzeOptions, type InputProgress } from './analyze/run.js';
export type * from './analyze/model.js';
export { renderJson } from './report/json.js';
export { renderText, type TextOptions } from './report/text.js';
export { renderMarkdown, type MarkdownOptions } from './report/markdown.js';
export { renderHtml, type HtmlOptions } from './report/html.js';
export { renderCsv, CSV_COLUMNS } from './report/csv.js';
export { DiagnosisCollector, findingFamily, FINDING_FAMILIES } from './analyze/diagnosis.js';
export { expandInputs } from './capture/inputs.js';
export { readCapture, type InputSource, type InputSummary } from './capture/reader.js';
export { VERSION } from './version.js';
