/** Stylesheets imported for their effect (the builder's style loader puts them in the page). */
declare module '*.css';
