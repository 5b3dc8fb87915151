// Invite page: focusing the invite link selects it, ready to copy (no inline handler: CSP forbids them).
(function () {
  var input = document.querySelector("#invite-link input");
  if (input) input.addEventListener("focus", function () { input.select(); });
})();
