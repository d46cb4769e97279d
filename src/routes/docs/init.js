// validatorUrl: null — the bundle would otherwise ask validator.swagger.io about the spec
// whenever the page is not served from localhost: /docs must never reach the network.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
