(function () {
  "use strict";
  if (typeof Stripe !== "function") return;
  function say(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }
  var card = document.getElementById("card-form");
  if (card) {
    var stripe = Stripe(card.dataset.key);
    var element = stripe.elements().create("card");
    element.mount("#card-element");
    card.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = card.querySelector("button");
      button.disabled = true;
      say("card-status", card.dataset.working);
      var body = new URLSearchParams();
      body.set("csrf", card.elements.csrf.value);
      body.set("attempt", card.elements.attempt.value);
      fetch(card.action + "/setup", { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (setup) {
          if (!setup.client_secret) throw new Error(setup.error || card.dataset.failed);
          return stripe.confirmCardSetup(setup.client_secret, { payment_method: { card: element } });
        })
        .then(function (result) {
          if (result.error) throw new Error(result.error.message || card.dataset.failed);
          card.elements.setup_intent.value = result.setupIntent.id;
          card.submit();
        })
        .catch(function (error) {
          say("card-status", (error && error.message) || card.dataset.failed);
          button.disabled = false;
        });
    });
  }
  var confirm = document.getElementById("confirm-form");
  if (confirm && confirm.dataset.secret) {
    var stripe3ds = Stripe(confirm.dataset.key);
    confirm.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = confirm.querySelector("button");
      button.disabled = true;
      say("confirm-status", confirm.dataset.working);
      stripe3ds.confirmCardPayment(confirm.dataset.secret).then(function (result) {
        if (result.paymentIntent) confirm.elements.payment_intent.value = result.paymentIntent.id;
        confirm.submit();
      });
    });
  }
})();
